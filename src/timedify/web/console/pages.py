"""The overview (C2) and the events pages (C3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from timedify.errors import TimedifyError
from timedify.ingest import webhooks
from timedify.models import EventState
from timedify.store import console as queries
from timedify.store import events
from timedify.web.console import compliance, views
from timedify.web.console.common import Console

WINDOW = timedelta(hours=24)
BUCKET_SECONDS = 300
PAGE_SIZE = 50


@dataclass
class Overview:
    """Everything the overview shows besides `/health` (one database pass)."""

    activity: dict[str, events.TopicActivity] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    compliance: dict[str, int] = field(default_factory=dict)

    @property
    def backlog(self) -> int:
        return sum(a.pending for a in self.activity.values())

    @property
    def oldest_pending_at(self) -> datetime | None:
        return min(
            (a.oldest_pending_at for a in self.activity.values() if a.oldest_pending_at),
            default=None,
        )


def _overview(conn: Connection, now: datetime) -> Overview:
    # The same readings as `/health/webhooks` (activity, with the backlog per topic) and as
    # /health's dead-letter check.
    activity = events.activity_by_topic(conn, now - WINDOW)
    for topic in webhooks.TOPICS:
        activity.setdefault(topic, events.TopicActivity())
    return Overview(
        activity=dict(sorted(activity.items())),
        dead_letters=events.dead_letters_by_topic(conn),
        compliance=compliance.by_deadline(compliance.open_items(conn), now),
    )


async def overview(console: Console, request: Request) -> Response:
    """`/console`: /health, per-topic activity, chart, backlog, dead letters, compliance."""
    report = await console.services.health.run()
    now = datetime.now(UTC)

    def read() -> Overview:
        with console.services.engine.connect() as conn:
            return _overview(conn, now)

    data = await console.db(read)
    checks = [(name, check) for name, items in report.checks.items() for check in items]
    return console.render(
        request,
        "overview.html",
        health=report.status,
        checks=checks,
        overview=data,
        window_hours=WINDOW.total_seconds() / 3600,
    )


async def chart(console: Console, request: Request) -> Response:
    """`/console/chart.json`: received / processed / failed per 5 minutes over 24 h."""
    now = datetime.now(UTC).timestamp()
    end = int(now) // BUCKET_SECONDS * BUCKET_SECONDS
    start = end - int(WINDOW.total_seconds()) + BUCKET_SECONDS
    since = console.chart.since(start)

    def read() -> dict[str, dict[int, int]]:
        with console.services.engine.connect() as conn:
            return queries.activity_series(conn, datetime.fromtimestamp(since, UTC), BUCKET_SECONDS)

    series = console.chart.merge(await console.db(read), start, since, now, BUCKET_SECONDS)
    x = list(range(start, end + 1, BUCKET_SECONDS))
    doc: dict[str, Any] = {"x": x, "bucket_seconds": BUCKET_SECONDS}
    for name, counts in series.items():
        doc[name] = [counts.get(t, 0) for t in x]
    return JSONResponse(doc)


def event_filters(request: Request) -> queries.EventFilters:
    """The `topic`, `shop`, `state` and `since` query parameters (empty ones are "any")."""
    params = request.query_params
    state = (params.get("state") or "").strip() or None
    if state is not None and state not in set(EventState):
        raise TimedifyError(f"unknown state {state!r}")
    return queries.EventFilters(
        topic=(params.get("topic") or "").strip() or None,
        shop=(params.get("shop") or "").strip() or None,
        state=state,
        since=views.since(params.get("since")),
    )


async def events_list(console: Console, request: Request) -> Response:
    """`/console/events`: newest first, `PAGE_SIZE` a page, `before=` the keyset cursor."""
    filters = event_filters(request)
    before = views.decode_cursor(request.query_params.get("before"))

    def read() -> list[queries.EventRow]:
        with console.services.engine.connect() as conn:
            return queries.list_events(conn, filters, before=before, limit=PAGE_SIZE + 1)

    rows = await console.db(read)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    query = {k: v for k, v in request.query_params.items() if k != "before" and v}
    next_query = {**query, "before": views.encode_cursor(rows[-1].cursor)} if more else None
    return console.render(
        request,
        "events.html",
        rows=rows,
        params=query,
        next_query=next_query,
        first_page=before is not None,
        topics=sorted(webhooks.TOPICS),
        states=[s.value for s in EventState],
    )


async def event(console: Console, request: Request) -> Response:
    """`/console/events/{id}`: headers kept, state and every attempt, the payload masked."""
    event_pk = int(request.path_params["event_pk"])

    def read() -> queries.EventDetail | None:
        with console.services.engine.connect() as conn:
            return queries.get_event(conn, event_pk)

    detail = await console.db(read)
    if detail is None:
        return console.render(request, "error.html", 404, error=f"no event with id {event_pk}")
    payload, keys, size = views.masked(detail.payload)
    return console.render(
        request, "event.html", event=detail, payload=payload, keys=keys, size=size
    )
