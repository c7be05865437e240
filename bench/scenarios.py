"""The scenarios: ack (per database, per concurrency), health and memory, against the baseline.

Repetitions interleave the baseline and the service runs (baseline, SQLite, PostgreSQL at one
concurrency, then the next), so a neighbour's load on the shared machine hits both sides of a
ratio alike. Figures are medians over the repetitions; a ratio is the median of the per-repetition
ratios.
"""

from __future__ import annotations

import math
import secrets
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.pgcluster import PgCluster

from bench import drain as drains
from bench import logscan, retention, services, wrk
from bench.report import table
from bench.services import Process

TARGET_ACK_RATIO = 0.45
TARGET_ACK_P99_MS = 25.0
TARGET_HEALTH_P99_MS = 5.0
TARGET_RSS_MB = 150.0
TARGET_DRAIN_SQLITE = 2000.0
TARGET_DRAIN_SCALING = 1.5
TARGET_SCAN_VS_GREP = 1 / 3
TARGET_RETENTION_ROWS = 50_000.0
TARGET_RETENTION_P99 = 2.0
HEALTH_CONNECTIONS = 16
_TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@dataclass
class Bench:
    """What every scenario shares: the servers, the run parameters, the targets' outcomes."""

    workdir: Path
    secret: str
    seconds: float
    repeat: int
    concurrency: list[int]
    baseline: Process
    services: dict[str, Process]
    cluster: PgCluster | None = None
    drain_events: int = 100_000
    drain_seconds: float = 45.0
    log_megabytes: int = 1024
    retention_events: int | None = None  # None: `retention.DEFAULT_EVENTS` of the database
    database_urls: dict[str, str] = field(default_factory=dict)
    targets: list[list[str]] = field(default_factory=list)
    ack_c64: dict[str, float] = field(default_factory=dict)
    baseline_c64: float = float("nan")
    _runs: int = 0

    def webhooks(self) -> Path:
        """A fresh script, so no webhook id repeats across runs against the same database."""
        self._runs += 1
        return wrk.webhook_script(self.workdir, self.secret, f"r{self._runs}")

    def target(self, what: str, measured: float, limit: float, unit: str, low: bool) -> None:
        met = measured <= limit if low else measured >= limit
        sign = "≤" if low else "≥"
        goal = f"{limit:.2f}".rstrip("0").rstrip(".")
        self.targets.append(
            [what, f"{measured:.2f}{unit}", f"{sign} {goal}{unit}", "met" if met else "MISSED"]
        )


def warm_up(bench: Bench) -> None:
    """Let every server load its code paths, pools and caches before anything is measured."""
    for proc in [bench.baseline, *bench.services.values()]:
        wrk.run(proc.url, bench.webhooks(), connections=16, seconds=2)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class _Series:
    results: list[wrk.Result] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # the server's CPU time per request

    def row(self, name: str, c: int) -> list[str]:
        r = self.results
        return [
            name,
            str(c),
            f"{_median([x.rps for x in r]):,.0f}",
            f"{_median(self.ratios):.2f}",
            f"{_median([x.p50_ms for x in r]):.2f}",
            f"{_median([x.p90_ms for x in r]):.2f}",
            f"{_median([x.p99_ms for x in r]):.2f}",
            str(sum(x.errors for x in r)),
            str(sum(x.non_2xx for x in r)),
        ]


_HEADER = ["server", "c", "req/s", "x baseline", "p50 ms", "p90 ms", "p99 ms", "errors", "non-2xx"]


def _paired(
    bench: Bench,
    script: Callable[[], Path],
    path: str,
    connections: list[int],
    servers: dict[str, Process] | None = None,
) -> dict[tuple[str, int], _Series]:
    """Baseline and every service (or `servers`) at each concurrency, `repeat` times, in turn."""
    series: dict[tuple[str, int], _Series] = {}
    for _ in range(bench.repeat):
        for c in connections:
            base, base_cpu_us = _measured(bench, bench.baseline, path, script(), c)
            b = series.setdefault(("baseline", c), _Series())
            b.results.append(base)
            b.ratios.append(1.0)
            b.cpu_us.append(base_cpu_us)
            for name, proc in (bench.services if servers is None else servers).items():
                result, cpu_us = _measured(bench, proc, path, script(), c)
                s = series.setdefault((name, c), _Series())
                s.results.append(result)
                s.ratios.append(result.rps / base.rps if base.rps else float("nan"))
                s.cpu_us.append(cpu_us)
    return series


def _measured(
    bench: Bench, proc: Process, path: str, script: Path, c: int
) -> tuple[wrk.Result, float]:
    """One wrk run and the server's CPU time per request during it (microseconds)."""
    before = proc.cpu_seconds()
    result = wrk.run(proc.url + path, script, connections=c, seconds=bench.seconds)
    return result, (proc.cpu_seconds() - before) * 1e6 / max(result.requests, 1)


def ack(bench: Bench) -> str:
    """Signed webhooks with unique ids, acknowledged after a durable commit (W4, W5)."""
    series = _paired(bench, bench.webhooks, "/webhooks", bench.concurrency)
    names = ["baseline", *bench.services]
    rows = [series[(n, c)].row(n, c) for c in bench.concurrency for n in names]
    checks = []
    for name, proc in bench.services.items():
        new, duplicate = services.acked_counts(proc.url)
        checks.append(f"{name}: {new:,} webhooks stored, {duplicate} duplicates")
        top = max(bench.concurrency)
        s = series[(name, top)]
        bench.ack_c64[name] = _median([x.rps for x in s.results])
        bench.baseline_c64 = _median([x.rps for x in series[("baseline", top)].results])
        bench.target(
            f"ack {name} c{top} x baseline", _median(s.ratios), TARGET_ACK_RATIO, "", False
        )
        bench.target(
            f"ack {name} c{top} p99",
            _median([x.p99_ms for x in s.results]),
            TARGET_ACK_P99_MS,
            " ms",
            True,
        )
    return (
        "#### Ack: signed webhooks, unique ids, 200 after commit\n\n"
        + table(_HEADER, rows)
        + "\n\n"
        + "; ".join(checks)
        + ".\n"
    )


_LAYERS = {
    "baseline": "read the body, answer 200",
    "bare": "+ verify, validate, build the row, answer (no commit, log line or metrics)",
    "observed": "+ metrics and the JSON log line",
}


def layers(bench: Bench) -> str:
    """The endpoint with parts left out (`bench.layers`) between the baseline and the service.

    Not in the default run: it explains the ack ratio rather than measuring a target.
    """
    url = services.sqlite_database(bench.workdir, "layers")
    servers = {
        name: services.layer(name, url, bench.secret, bench.workdir)
        for name in ("bare", "observed")
    }
    try:
        top = max(bench.concurrency)
        series = _paired(bench, bench.webhooks, "/webhooks", [top], {**servers, **bench.services})
    finally:
        for proc in servers.values():
            proc.stop()
    described = {
        **_LAYERS,
        **dict.fromkeys(bench.services, "+ the durable group commit: the service"),
    }
    rows = []
    for name, what in described.items():
        s = series[(name, top)]
        rows.append(
            [
                name,
                what,
                f"{_median([x.rps for x in s.results]):,.0f}",
                f"{_median(s.ratios):.2f}",
                f"{_median(s.cpu_us):.0f}",
                f"{_median([x.p99_ms for x in s.results]):.2f}",
                str(sum(x.errors + x.non_2xx for x in s.results)),
            ]
        )
    header = ["server", "per request", "req/s", "x baseline", "CPU us/req", "p99 ms", "errors"]
    return (
        f"#### Layers: where an acknowledgement's time goes, c{top}\n\n"
        + table(header, rows)
        + "\n"
    )


def health(bench: Bench) -> str:
    """`GET /health` (H1) under concurrent polling; the baseline answers the same GET."""
    get = wrk.get_script(bench.workdir)
    series = _paired(bench, lambda: get, "/health", [HEALTH_CONNECTIONS])
    rows = [
        series[(n, HEALTH_CONNECTIONS)].row(n, HEALTH_CONNECTIONS)
        for n in ["baseline", *bench.services]
    ]
    for name in bench.services:
        s = series[(name, HEALTH_CONNECTIONS)]
        p99 = _median([x.p99_ms for x in s.results])
        bench.target(
            f"/health {name} c{HEALTH_CONNECTIONS} p99", p99, TARGET_HEALTH_P99_MS, " ms", True
        )
    return "#### Health: GET /health\n\n" + table(_HEADER, rows) + "\n"


def memory(bench: Bench, ack_ran: bool) -> str:
    """Peak RSS (VmHWM) of each `serve` process after it carried the ack load."""
    if not ack_ran:
        for proc in bench.services.values():
            for c in bench.concurrency:
                wrk.run(
                    proc.url + "/webhooks", bench.webhooks(), connections=c, seconds=bench.seconds
                )
    rows = []
    for name, proc in bench.services.items():
        peak = proc.peak_rss_mb()
        rows.append([name, f"{peak:.1f}"])
        bench.target(f"peak RSS {name}", peak, TARGET_RSS_MB, " MB", True)
    rows.append(["baseline", f"{bench.baseline.peak_rss_mb():.1f}"])
    return (
        "#### Memory: peak RSS of `serve` under the ack load\n\n"
        + table(["process", "VmHWM MB"], rows)
        + "\n"
    )


def drain(bench: Bench) -> str:
    """A stored backlog processed by worker processes: events/s (P1)."""
    runs: list[tuple[str, str, int]] = []
    if "sqlite" in bench.services:
        runs.append(("sqlite", services.sqlite_database(bench.workdir, "drain"), 1))
    if bench.cluster is not None:
        for workers in (1, 2):
            runs.append(("postgresql", services.postgres_database(bench.cluster), workers))
    rows, rates = [], {}
    for name, url, workers in runs:
        drains.store_backlog(url, bench.drain_events)
        result = drains.drain(
            f"drain-{name}-{workers}",
            url,
            bench.secret,
            bench.workdir,
            workers=workers,
            limit=bench.drain_seconds,
        )
        rates[(name, workers)] = result.rate
        ack = bench.ack_c64.get(name, float("nan"))
        rows.append(
            [
                name,
                str(workers),
                f"{result.events:,}",
                f"{result.left:,}",
                f"{result.seconds:.1f}",
                f"{result.rate:,.0f}",
                _ratio(result.rate, ack),
                _ratio(result.rate, bench.baseline_c64),
            ]
        )
    if ("sqlite", 1) in rates:
        bench.target("drain sqlite events/s", rates[("sqlite", 1)], TARGET_DRAIN_SQLITE, "", False)
    if ("postgresql", 2) in rates and rates[("postgresql", 1)]:
        scaling = rates[("postgresql", 2)] / rates[("postgresql", 1)]
        bench.target("drain postgresql 2 workers x 1", scaling, TARGET_DRAIN_SCALING, "", False)
    header = ["database", "workers", "processed", "left", "seconds", "events/s"]
    header += ["x ack c64", "x baseline c64"]
    return (
        f"#### Drain: a backlog of {bench.drain_events:,} stored events, `timedify worker`\n\n"
        + table(header, rows)
        + f"\n\nEach run stops after {bench.drain_seconds:g} s; the rate counts from the first "
        "processed event. Ratios: to the same database's ack rate and to the raw-ASGI "
        "baseline at c64 (can the worker keep up with what one ingest process accepts?).\n"
    )


def _ratio(value: float, to: float) -> str:
    """`value / to`, or "-" when `to` was not measured in this run (its scenario did not run)."""
    return f"{value / to:.2f}" if math.isfinite(to) and to else "-"


def alerting(bench: Bench) -> str:
    """`timedify alerting-check` scanning a generated log, as a ratio to `grep -c` (O3)."""
    url = services.sqlite_database(bench.workdir, "alerting")
    m = logscan.measure(bench.workdir, url, bench.secret, bench.log_megabytes)
    mb = m["bytes"] / 2**20
    ratio = (mb / m["check"]) / (mb / m["grep"])
    bench.target("alerting-check x grep -c", ratio, TARGET_SCAN_VS_GREP, "", False)
    rows = [
        ["grep -c", f"{mb:,.0f}", f"{m['grep']:.2f}", f"{mb / m['grep']:,.0f}", "1.00"],
        [
            "alerting-check",
            f"{mb:,.0f}",
            f"{m['check']:.2f}",
            f"{mb / m['check']:,.0f}",
            f"{ratio:.2f}",
        ],
    ]
    return (
        "#### Alerting-check: scan of a generated log\n\n"
        + table(["tool", "MiB", "seconds", "MiB/s", "x grep"], rows)
        + "\n"
    )


def retention_cleanup(bench: Bench, name: str) -> str:
    """Old events deleted by `retention-cleanup` while ack traffic runs at c16 (O5)."""
    proc = bench.services[name]
    url = bench.database_urls[name]
    retention.store_old_events(url, bench.retention_events or retention.DEFAULT_EVENTS[name])
    idle = [
        wrk.run(proc.url + "/webhooks", bench.webhooks(), connections=16, seconds=bench.seconds)
        for _ in range(bench.repeat)
    ]
    cleanup = retention.Cleanup(url, bench.secret, bench.workdir)
    during = []
    while cleanup.running() and len(during) < 40:
        during.append(wrk.run(proc.url + "/webhooks", bench.webhooks(), connections=16, seconds=2))
    deleted = cleanup.wait(timeout=600)
    rate = deleted / cleanup.seconds if cleanup.seconds else 0.0
    idle_p99 = _median([r.p99_ms for r in idle])
    during_p99 = _median([r.p99_ms for r in during])
    bench.target(f"retention {name} rows/s", rate, TARGET_RETENTION_ROWS, "", False)
    ratio = during_p99 / idle_p99
    bench.target(f"retention {name} ack p99 x idle", ratio, TARGET_RETENTION_P99, "", True)
    rows = [
        [
            "idle",
            "-",
            f"{_median([r.rps for r in idle]):,.0f}",
            f"{idle_p99:.2f}",
            str(sum(r.errors + r.non_2xx for r in idle)),
        ],
        [
            "during cleanup",
            f"{rate:,.0f}",
            f"{_median([r.rps for r in during]):,.0f}",
            f"{during_p99:.2f}",
            str(sum(r.errors + r.non_2xx for r in during)),
        ],
    ]
    return (
        f"#### Retention: {deleted:,} old events deleted in {cleanup.seconds:.1f} s, "
        f"{_TITLES[name]} service under ack c16\n\n"
        + table(["ack c16", "rows/s deleted", "ack req/s", "ack p99 ms", "errors+non-2xx"], rows)
        + "\n"
    )


def targets(rows: list[list[str]], heading: bool = True) -> str:
    """The targets table: what, measured, goal, met or MISSED."""
    text = table(["target", "measured", "goal", "status"], rows) + "\n"
    return "#### Targets\n\n" + text if heading else text


def new_secret() -> str:
    return secrets.token_urlsafe(24)
