"""The console scenario: its events pages and overview on a database of 1,000,000 events (C3).

A fresh database per kind gets the events in one server-side statement (a recursive CTE on
SQLite, `generate_series` on PostgreSQL): 30 days of webhooks at a steady rate over 1,000 shops
and three topics, 1 % dead, a few pending, one attempt each. A `timedify serve --no-worker`
with `CONSOLE_PASSWORD` then answers each page `repeat` x `PER_RUN` times in turn with the
raw-ASGI baseline (`bench.baseline`), one request at a time; a ratio is page / baseline of the
same round, and the issue's bound is 200 ms a page.
"""

from __future__ import annotations

import re
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Connection, text

from bench import services
from bench.report import table
from timedify.db import make_engine
from timedify.models import EventState
from timedify.web.console.auth import COOKIE
from timedify.web.console.views import encode_cursor

DEFAULT_EVENTS = 1_000_000
TARGET_MS = 200.0
PER_RUN = 10
PASSWORD = "bench-console-password"
DAYS = 30
_TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
_TOPICS = ("app/uninstalled", "app/scopes_update", "app_subscriptions/update")


def seed(database_url: str, count: int) -> float:
    """`count` events and their attempts, oldest first; the seconds it took."""
    started = time.perf_counter()
    step = DAYS * 86400 / count
    start = datetime.now(UTC).timestamp() - DAYS * 86400
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                _seed_sqlite(conn, count, start, step)
            else:
                _seed_postgres(conn, count, start, step)
        if not database_url.startswith("sqlite"):
            # PostgreSQL's autovacuum analyses a table after such a load; SQLite has no such
            # thing (and the service never runs ANALYZE), so its planner works without stats.
            with engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
    finally:
        engine.dispose()
    return time.perf_counter() - started


def _columns(i: str, at: str, topic: str, shop: str, count: int) -> str:
    """The INSERT ... SELECT of event number `i` (SQL expressions) of `count`."""
    pending = f"{i} > {count - 100}"  # the newest 100 wait for a worker
    return (
        "INSERT INTO webhook_events (webhook_id, topic, shop_domain, event_id, triggered_at, "
        "api_version, received_at, payload, state, attempts, next_attempt_at, processed_at, "
        f"synthetic) SELECT 'bench-' || {i}, {topic}, {shop}, NULL, {at}, '2025-10', {at}, "
        f"{_payload(shop)}, {_state(i, pending)}, 1, {at}, "
        f"CASE WHEN {pending} THEN NULL ELSE {at} END, false"
    )


def _payload(shop: str) -> str:
    return 'CAST(\'{"id": 548380009, "domain": "\' || ' + shop + " || '\"}' AS BLOB)"


def _state(i: str, pending: str) -> str:
    return (
        f"CASE WHEN {pending} THEN '{EventState.RECEIVED}' "
        f"WHEN {i} % 100 = 0 THEN '{EventState.DEAD}' "
        f"ELSE '{EventState.PROCESSED}' END"
    )


def _seed_sqlite(conn: Connection, count: int, start: float, step: float) -> None:
    at = f"strftime('%Y-%m-%d %H:%M:%f', {start} + i * {step}, 'unixepoch') || '000'"
    topic = "CASE i % 3 " + " ".join(f"WHEN {n} THEN '{t}'" for n, t in enumerate(_TOPICS)) + " END"
    shop = "'bench-shop-' || (i % 1000) || '.myshopify.com'"
    insert = _columns("i", at, topic, shop, count)
    conn.execute(
        text(
            f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {count}) "
            + insert
            + " FROM s"
        )
    )
    _attempts(conn)


def _seed_postgres(conn: Connection, count: int, start: float, step: float) -> None:
    at = f"(to_timestamp({start} + i * {step}) AT TIME ZONE 'UTC')"
    topic = f"(ARRAY[{', '.join(repr(t) for t in _TOPICS)}])[i % 3 + 1]"
    shop = "'bench-shop-' || (i % 1000) || '.myshopify.com'"
    insert = _columns("i", at, topic, shop, count).replace("AS BLOB", "AS BYTEA")
    conn.execute(text(insert + f" FROM generate_series(1, {count}) AS i"))
    _attempts(conn)


def _attempts(conn: Connection) -> None:
    conn.execute(
        text(
            "INSERT INTO event_attempts (event_pk, attempt, started_at, finished_at, outcome) "
            "SELECT id, 1, received_at, received_at, state FROM webhook_events "
            f"WHERE state != '{EventState.RECEIVED}' ORDER BY id"
        )
    )


def _deep_cursor(database_url: str, offset: int) -> str:
    """The `before=` of the page `offset` events from the newest."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT received_at, id FROM webhook_events "
                    "ORDER BY received_at DESC, id DESC LIMIT 1 OFFSET :n"
                ),
                {"n": offset},
            ).one()
    finally:
        engine.dispose()
    at = row[0] if isinstance(row[0], datetime) else datetime.fromisoformat(row[0])
    return encode_cursor((at.replace(tzinfo=UTC), int(row[1])))


def _console(name: str, database_url: str, secret: str, workdir: Path) -> services.Process:
    env = services.service_env(database_url, secret, workdir)
    env["CONSOLE_PASSWORD"] = PASSWORD
    args = ["-m", "timedify", "serve", "--no-worker"]
    return services.Process(f"console-{name}", args, env, workdir / f"console-{name}.log").start(
        "/health/live"
    )


def _login(url: str) -> httpx.Client:
    """A client logged in to the console (its cookie is `Secure` in production: over plain
    HTTP on loopback it is handed back by hand)."""
    client = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
    form = client.get("/console/login")
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
    assert match, "no login form"
    client.cookies.set(COOKIE, form.cookies[COOKIE])
    answer = client.post("/console/login", data={"csrf": match.group(1), "password": PASSWORD})
    assert answer.status_code == 303, answer.status_code
    client.cookies.set(COOKIE, answer.cookies[COOKIE])
    return client


def _ms(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    answer = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    assert answer.status_code == 200, (path, answer.status_code)
    return elapsed


def pages(database_url: str, count: int) -> dict[str, str]:
    """The measured pages: label -> path."""
    since = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    return {
        "events, first page": "/console/events",
        "events, topic + shop": "/console/events?topic=app/uninstalled"
        "&shop=bench-shop-7.myshopify.com",
        "events, state=dead": "/console/events?state=dead",
        "events, since 2 days": f"/console/events?since={since}",
        f"events, {count // 2:,} deep": "/console/events?before="
        + _deep_cursor(database_url, count // 2),
        "overview (HTML)": "/console",
        "overview chart (JSON)": "/console/chart.json",
    }


def scenario(
    name: str,
    database_url: str,
    baseline: services.Process,
    secret: str,
    workdir: Path,
    count: int,
    repeat: int,
) -> tuple[str, list[list[str]]]:
    """Seed, serve, measure; the section's Markdown and the target rows."""
    seconds = seed(database_url, count)
    proc = _console(name, database_url, secret, workdir)
    try:
        client = _login(proc.url)
        plain = httpx.Client(base_url=baseline.url, timeout=30)
        measured = pages(database_url, count)
        for path in measured.values():  # first answers fill caches and pools
            _ms(client, path)
        times: dict[str, list[float]] = {label: [] for label in measured}
        ratios: dict[str, list[float]] = {label: [] for label in measured}
        for _ in range(repeat * PER_RUN):
            for label, path in measured.items():
                base = _ms(plain, "/")
                page = _ms(client, path)
                times[label].append(page)
                ratios[label].append(page / base)
    finally:
        proc.stop()
    rows, targets = [], []
    for label, values in times.items():
        median = statistics.median(values)
        p95 = statistics.quantiles(values, n=20)[-1] if len(values) > 1 else median
        rows.append(
            [label, f"{median:.1f}", f"{p95:.1f}", f"{statistics.median(ratios[label]):.1f}"]
        )
        met = "met" if p95 <= TARGET_MS else "MISSED"
        targets.append(
            [f"console {name} {label} p95", f"{p95:.1f} ms", f"≤ {TARGET_MS:.0f} ms", met]
        )
    text_ = (
        f"#### Console: {_TITLES[name]}, {count:,} events (seeded in {seconds:.0f} s)\n\n"
        + table(["page", "median ms", "p95 ms", "x baseline request"], rows)
        + "\n"
    )
    return text_, targets
