"""The alerting check: log counters, database state and a URL probe against thresholds (SPEC O3).

Results follow the Nagios plugin convention: each finding has a state OK / WARNING / CRITICAL /
UNKNOWN, the worst one is the exit code, and the first output line is
`TIMEDIFY <STATE> - <summary> | <perfdata>`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from timedify.toolkit.log_scan import ScanResult

# SQLAlchemy and httpx are imported where used: `alerting-check --no-db` over a big log file
# starts in a fraction of a second without them (the log scan is benchmarked against grep).


# Shopify's deadline for answering a compliance webhook (as in `handlers`).
COMPLIANCE_DEADLINE = timedelta(days=30)


class State(enum.IntEnum):
    """Nagios states; the value is the exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


# Aggregation order (monitoring-plugins' max_state_alt): a real problem outranks "could not tell".
_SEVERITY = {State.OK: 0, State.UNKNOWN: 1, State.WARNING: 2, State.CRITICAL: 3}


def worst(states: list[State]) -> State:
    """The state that decides the exit code."""
    return max(states, key=_SEVERITY.__getitem__, default=State.OK)


@dataclass(frozen=True)
class Threshold:
    """A value at or above `warn` is WARNING, at or above `crit` CRITICAL."""

    warn: float
    crit: float

    def state(self, value: float) -> State:
        if value >= self.crit:
            return State.CRITICAL
        return State.WARNING if value >= self.warn else State.OK


@dataclass(frozen=True)
class Thresholds:
    """Defaults are the runbook's (docs/operations.md); every one is a CLI option."""

    webhook_errors: Threshold = Threshold(1, 10)
    db_errors: Threshold = Threshold(1, 5)
    http_429: Threshold = Threshold(10, 100)
    http_5xx: Threshold = Threshold(1, 10)
    dead_letters: Threshold = Threshold(1, 10)
    backlog_age_seconds: Threshold = Threshold(300, 3600)
    compliance_warn_days: float = 7
    compliance_crit_days: float = 2


@dataclass(frozen=True)
class Finding:
    """One measured value and what it means."""

    name: str
    state: State
    text: str
    value: float | None = None
    threshold: Threshold | None = None
    unit: str = ""

    def perfdata(self) -> str | None:
        if self.value is None:
            return None
        value = f"{self.value:g}{self.unit}"
        if self.threshold is None:
            return f"{self.name}={value};;;0"
        return f"{self.name}={value};{self.threshold.warn:g};{self.threshold.crit:g};0"

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "state": self.state.name, "text": self.text}
        if self.value is not None:
            doc["value"] = self.value
        if self.threshold is not None:
            doc["warn"], doc["crit"] = self.threshold.warn, self.threshold.crit
        return doc


@dataclass
class Report:
    """All findings of one run."""

    findings: list[Finding] = field(default_factory=list)
    window: str = "24h"

    @property
    def state(self) -> State:
        return worst([f.state for f in self.findings])

    def summary(self) -> str:
        """The Nagios first line: state, the findings that are not OK, perfdata."""
        problems = [f"{f.name}: {f.text}" for f in self.findings if f.state != State.OK]
        text = "; ".join(problems) if problems else f"no problems (window {self.window})"
        perf = " ".join(p for f in self.findings if (p := f.perfdata()))
        return f"TIMEDIFY {self.state.name} - {text}" + (f" | {perf}" if perf else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state.name,
            "exit_code": int(self.state),
            "summary": self.summary(),
            "window": self.window,
            "findings": [f.to_json() for f in self.findings],
        }


LOG_COUNTERS = (
    ("webhook_errors", "webhook errors"),
    ("db_errors", "database errors"),
    ("http_429", "HTTP 429 responses"),
    ("http_5xx", "HTTP 5xx responses"),
)


def log_findings(scan: ScanResult, thresholds: Thresholds) -> list[Finding]:
    """One finding per log counter."""
    findings = []
    for name, label in LOG_COUNTERS:
        threshold: Threshold = getattr(thresholds, name)
        count = scan.count(name)
        findings.append(Finding(name, threshold.state(count), f"{count} {label}", count, threshold))
    return findings


def database_findings(conn: Connection, thresholds: Thresholds, now: datetime) -> list[Finding]:
    """Unresolved dead letters, the oldest pending event, compliance deadlines."""
    from timedify.store import events

    dead = sum(events.dead_letters_by_topic(conn).values())
    oldest = min(
        (
            b.oldest_received_at
            for b in events.backlog_by_topic(conn).values()
            if b.oldest_received_at
        ),
        default=None,
    )
    age = round((now - oldest).total_seconds(), 1) if oldest else 0.0
    findings = [
        Finding(
            "dead_letters",
            thresholds.dead_letters.state(dead),
            f"{dead} unresolved dead letters (run `timedify dead-letters list`)"
            if dead
            else "0 unresolved dead letters",
            dead,
            thresholds.dead_letters,
        ),
        Finding(
            "backlog_age",
            thresholds.backlog_age_seconds.state(age),
            f"oldest pending event is {age:g} s old",
            age,
            thresholds.backlog_age_seconds,
            "s",
        ),
    ]
    findings.append(_compliance_finding(conn, thresholds, now))
    findings.append(_reauth_finding(conn))
    return findings


def _reauth_finding(conn: Connection) -> Finding:
    """Shops whose token Shopify refused (S4): WARNING, the merchant must open the app again."""
    from timedify.store import shops

    domains = [s.domain for s in shops.needing_reauth(conn)]
    if not domains:
        return Finding("shops_reauth", State.OK, "0 shops need re-authentication", 0)
    listed = ", ".join(domains[:5]) + (", ..." if len(domains) > 5 else "")
    text = f"{len(domains)} shops need re-authentication ({listed}): they must open the app"
    return Finding("shops_reauth", State.WARNING, text, len(domains))


def _compliance_finding(conn: Connection, thresholds: Thresholds, now: datetime) -> Finding:
    """Compliance requests near their 30-day deadline and not yet answered.

    Two sources: request rows still open, and compliance webhooks the worker has not applied
    (pending or dead) - for those no request row exists yet, the deadline runs from receipt.
    """
    from timedify.ingest.webhooks import COMPLIANCE_TOPICS
    from timedify.store import reports

    warn_by = now + timedelta(days=thresholds.compliance_warn_days)
    crit_by = now + timedelta(days=thresholds.compliance_crit_days)
    due_warn, due_crit = reports.compliance_due_by(conn, warn_by, crit_by)
    events_warn, events_crit = reports.unapplied_compliance_due_by(
        conn, COMPLIANCE_TOPICS, COMPLIANCE_DEADLINE, warn_by, crit_by
    )
    due_warn, due_crit = due_warn + events_warn, due_crit + events_crit
    state = State.CRITICAL if due_crit else (State.WARNING if due_warn else State.OK)
    text = (
        f"{due_warn} open compliance requests due within {thresholds.compliance_warn_days:g} "
        f"days ({due_crit} within {thresholds.compliance_crit_days:g} days or overdue)"
    )
    return Finding("compliance_due", state, text, due_warn)


def url_finding(url: str, timeout: float = 5.0) -> Finding:
    """GET `url`/health: pass OK, warn WARNING, fail or unreachable CRITICAL."""
    import httpx

    from timedify.toolkit import urls

    target = url.rstrip("/") + "/health"
    try:
        response = httpx.get(target, timeout=timeout)
        status = str(response.json().get("status", "fail"))
    except httpx.HTTPError as exc:
        return Finding("health", State.CRITICAL, f"{target} unreachable: {urls.reason(exc)}")
    except (ValueError, AttributeError):
        return Finding("health", State.CRITICAL, f"{target} did not answer a health document")
    state = {"pass": State.OK, "warn": State.WARNING}.get(status, State.CRITICAL)
    return Finding("health", state, f"{target} answered {response.status_code} {status}")


def notify(url: str, report: Report, timeout: float = 10.0) -> None:
    """Post the summary to a Slack-compatible incoming webhook (`{"text": ...}`)."""
    import httpx

    lines = [report.summary().split(" | ", 1)[0]]
    lines += [f"• {f.name}: {f.text}" for f in report.findings if f.state != State.OK]
    response = httpx.post(url, json={"text": "\n".join(lines)}, timeout=timeout)
    response.raise_for_status()


def parse_window(text: str) -> timedelta:
    """`24h`, `90m`, `7d`, `3600s` (or plain seconds) as a timedelta."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            return timedelta(seconds=float(text[:-1]) * units[text[-1]])
        return timedelta(seconds=float(text))
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (use e.g. 24h, 90m, 7d)") from None


def since(window: timedelta) -> datetime:
    return datetime.now(UTC) - window
