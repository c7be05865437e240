"""The e2e scenario: the service as shipped, from the acknowledgement to the applied event.

`timedify serve` runs as `make run` and fly.toml's app group start it (worker in-process), on a
fresh database per repetition: a short warm-up and its backlog applied, then a burst at c64
(`bench.burst`), then the backlog polled until nothing is pending. On PostgreSQL the scale-out
configuration follows: `serve --no-worker` takes the same burst, then 1 or 2 `timedify worker`
processes drain it. Each repetition starts with the raw-ASGI baseline taking the same burst, so
the ack ratio is a same-run ratio; figures are medians over the repetitions.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from bench import burst, services, wrk
from bench import drain as drains
from bench.burst import Burst
from bench.report import table
from bench.scenarios import Bench

TARGET_P99_MS = 25.0
TARGET_APPLIED_BURSTS = 2.0  # all applied within this many burst durations after it began
TARGET_WORKER_RATE = 4000.0
TARGET_WORKER_SCALING = 1.6
WARM_UP_LIMIT = 120.0
SCALE_OUT = (1, 2)
_TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class _Runs:
    """One configuration's repetitions."""

    bursts: list[Burst] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    drains: list[drains.Drained] = field(default_factory=list)

    def median(self, value: str) -> float:
        return _median([float(getattr(b, value)) for b in self.bursts])

    def ack(self, value: str) -> float:
        return _median([float(getattr(b.ack, value)) for b in self.bursts])

    def faults(self) -> int:
        return sum(b.ack.errors + b.ack.non_2xx for b in self.bursts)

    def applied_after(self) -> float:
        """Median seconds until all applied; infinite for a run that hit the bound."""
        return _median([b.applied_after if not b.left else math.inf for b in self.bursts])


def scenario(bench: Bench, seconds: float) -> str:
    """The shipped configuration on every database, then PostgreSQL's scale-out."""
    shipped: dict[str, _Runs] = {db: _Runs() for db in bench.services}
    scaled: dict[int, _Runs] = {n: _Runs() for n in SCALE_OUT}
    baseline: list[wrk.Result] = []
    for rep in range(bench.repeat):
        lua = burst.script(bench.workdir, bench.secret, f"b{rep}")
        base = wrk.run(bench.baseline.url, lua, connections=burst.CONNECTIONS, seconds=seconds)
        baseline.append(base)
        for db in bench.services:
            one = _shipped(bench, db, rep, seconds)
            shipped[db].bursts.append(one)
            shipped[db].ratios.append(one.ack.rps / base.rps if base.rps else math.nan)
        if bench.cluster is not None:
            for workers in SCALE_OUT:
                one, drained = _scale_out(bench, workers, rep, seconds)
                scaled[workers].bursts.append(one)
                scaled[workers].drains.append(drained)
    text = _shipped_section(bench, shipped, baseline, seconds)
    if bench.cluster is not None:
        text = text.rstrip("\n") + "\n\n" + _scale_out_section(bench, scaled, seconds)
    return text


def _database(bench: Bench, db: str, name: str) -> str:
    if db == "sqlite":
        return services.sqlite_database(bench.workdir, name)
    assert bench.cluster is not None
    return services.postgres_database(bench.cluster)


def _shipped(bench: Bench, db: str, rep: int, seconds: float) -> Burst:
    """One burst against `timedify serve` with its worker, until all of it is applied."""
    url = _database(bench, db, f"e2e-{rep}")
    proc = burst.shipped(f"e2e-{db}-{rep}", url, bench.secret, bench.workdir)
    try:
        burst.warm_up(proc, url, bench.workdir, bench.secret, WARM_UP_LIMIT)
        lua = burst.script(bench.workdir, bench.secret, f"e{db}{rep}")
        return burst.burst(proc, url, lua, seconds=seconds)
    finally:
        proc.stop()


def _scale_out(
    bench: Bench, workers: int, rep: int, seconds: float
) -> tuple[Burst, drains.Drained]:
    """The burst stored by `serve --no-worker`, then drained by `workers` worker processes."""
    url = _database(bench, "postgresql", "")
    name = f"e2e-scale-{workers}-{rep}"
    proc = services.service(name, url, bench.secret, bench.workdir)
    try:
        warm = burst.script(bench.workdir, bench.secret, f"w{name}")
        wrk.run(proc.url, warm, connections=16, seconds=1)
        lua = burst.script(bench.workdir, bench.secret, f"s{workers}-{rep}")
        stored = burst.burst(proc, url, lua, seconds=seconds, wait=False)
        drained = drains.drain(
            name,
            url,
            bench.secret,
            bench.workdir,
            workers=workers,
            limit=seconds * burst.WAIT_BURSTS,
        )
    finally:
        proc.stop()
    return stored, drained


def _shipped_section(
    bench: Bench, shipped: dict[str, _Runs], baseline: list[wrk.Result], seconds: float
) -> str:
    rows = [
        [
            "baseline",
            f"{_median([r.rps for r in baseline]):,.0f}",
            "1.00",
            f"{_median([r.p50_ms for r in baseline]):.2f}",
            f"{_median([r.p99_ms for r in baseline]):.2f}",
            str(sum(r.errors + r.non_2xx for r in baseline)),
            *["-"] * 5,
        ]
    ]
    for db, runs in shipped.items():
        after = runs.applied_after()
        rates = [b.rate for b in runs.bursts if not b.left]
        rows.append(
            [
                f"{_TITLES[db]}, serve",
                f"{runs.ack('rps'):,.0f}",
                f"{_median(runs.ratios):.2f}",
                f"{runs.ack('p50_ms'):.2f}",
                f"{runs.ack('p99_ms'):.2f}",
                str(runs.faults()),
                f"{runs.median('acknowledged'):,.0f}",
                f"{runs.median('backlog'):,.0f}",
                f"{after:.1f}" if math.isfinite(after) else _unfinished(runs),
                f"{_median(rates):,.0f}" if rates else _at_most(runs),
                f"{runs.median('cpu_us'):,.0f}",
            ]
        )
        bench.target(f"e2e {db} serve ack p99", runs.ack("p99_ms"), TARGET_P99_MS, " ms", True)
        bench.target(
            f"e2e {db} serve all applied (x burst)",
            after / seconds,
            TARGET_APPLIED_BURSTS,
            "",
            True,
        )
    header = ["server", "ack req/s", "x baseline", "p50 ms", "p99 ms", "errors+non-2xx"]
    header += ["acked", "backlog at end", "all applied after s", "end to end /s", "CPU us/event"]
    dead = sum(b.dead for runs in shipped.values() for b in runs.bursts)
    return (
        f"#### E2E: `timedify serve` as shipped (worker in-process), c{burst.CONNECTIONS} "
        f"for {seconds:g} s\n\n"
        + table(header, rows)
        + f'\n\nThree topics over {burst.SHOPS} shops; "all applied after" counts from the '
        f"burst's start; end to end = acked ÷ that; CPU: the serve process's, burst and backlog, "
        f"per acked event. Dead letters: {dead}.\n"
    )


def _unfinished(runs: _Runs) -> str:
    left = _median([float(b.left) for b in runs.bursts])
    return f"> {max(b.applied_after for b in runs.bursts):.0f} ({left:,.0f} left)"


def _at_most(runs: _Runs) -> str:
    """Unfinished runs: the end-to-end rate is below acked ÷ the time waited."""
    return f"< {_median([b.acknowledged / b.applied_after for b in runs.bursts]):,.0f}"


def _scale_out_section(bench: Bench, scaled: dict[int, _Runs], seconds: float) -> str:
    rows, rates = [], {}
    for workers, runs in scaled.items():
        rate = rates[workers] = _median([d.rate for d in runs.drains])
        one = rates.get(1, math.nan)
        rows.append(
            [
                str(workers),
                f"{runs.ack('rps'):,.0f}",
                f"{runs.ack('p99_ms'):.2f}",
                f"{_median([float(d.events) for d in runs.drains]):,.0f}",
                f"{_median([float(d.left) for d in runs.drains]):,.0f}",
                f"{_median([d.seconds for d in runs.drains]):.1f}",
                f"{rate:,.0f}",
                f"{rate / one:.2f}",
            ]
        )
    bench.target("e2e postgresql 1 worker events/s", rates[1], TARGET_WORKER_RATE, "", False)
    scaling = rates[2] / rates[1] if rates[1] else math.nan
    bench.target("e2e postgresql 2 workers x 1", scaling, TARGET_WORKER_SCALING, "", False)
    header = ["workers", "ack req/s", "ack p99 ms", "drained", "left", "seconds", "events/s"]
    header += ["x 1 worker"]
    return (
        "#### E2E scale-out, PostgreSQL: `serve --no-worker` takes the burst, then "
        "`timedify worker` processes drain it\n\n"
        + table(header, rows)
        + f"\n\nThe drain counts from the first applied event and stops after "
        f"{seconds * burst.WAIT_BURSTS:g} s.\n"
    )
