"""The compliance page (C5): requests with their deadlines and evidence.

Urgency uses `alerting-check`'s thresholds (warn 7 days, critical 2 days before the deadline),
and the deadline the handlers record (`handlers.COMPLIANCE_DEADLINE`, 30 days), so the console
calls "due" what the alerting calls due. Like `alerting-check`, it counts compliance webhooks
not applied yet: no request row exists for them, their deadline runs from receipt.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from timedify.processing.handlers import COMPLIANCE_DEADLINE
from timedify.store import console as queries
from timedify.toolkit.alerting_check import Thresholds
from timedify.web.console import views
from timedify.web.console.common import Console

URGENCY = ("overdue", "critical", "warning", "open")


def open_items(conn: Connection) -> list[queries.ComplianceItem]:
    """Compliance webhooks not applied yet (pending, retrying or dead), most urgent first."""
    return queries.unapplied_compliance(conn, COMPLIANCE_DEADLINE)


def urgency(item: queries.ComplianceItem, now: datetime, thresholds: Thresholds) -> str:
    """`done`, or how close an open item is to its deadline."""
    if item.completed_at is not None:
        return "done"
    left = item.deadline_at - now
    if left <= timedelta(0):
        return "overdue"
    if left <= timedelta(days=thresholds.compliance_crit_days):
        return "critical"
    if left <= timedelta(days=thresholds.compliance_warn_days):
        return "warning"
    return "open"


def by_deadline(items: list[queries.ComplianceItem], now: datetime) -> dict[str, int]:
    """Open items per urgency (the overview's compliance line)."""
    thresholds = Thresholds()
    counts = dict.fromkeys(URGENCY, 0)
    for item in items:
        level = urgency(item, now, thresholds)
        if level in counts:
            counts[level] += 1
    return counts


async def page(console: Console, request: Request) -> Response:
    """`/console/compliance`: open ones first, then the recorded requests with their evidence."""
    now = datetime.now(UTC)

    def read() -> list[queries.ComplianceItem]:
        with console.services.engine.connect() as conn:
            return open_items(conn) + queries.compliance_requests(conn)

    items = await console.db(read)
    thresholds = Thresholds()
    rows = [
        {
            "item": item,
            "urgency": urgency(item, now, thresholds),
            "evidence": views.pretty_json(item.evidence),
        }
        for item in items
    ]
    return console.render(
        request,
        "compliance.html",
        rows=rows,
        warn_days=thresholds.compliance_warn_days,
        crit_days=thresholds.compliance_crit_days,
        deadline_days=COMPLIANCE_DEADLINE.days,
    )
