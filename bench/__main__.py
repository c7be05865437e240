"""`python -m bench [scenario ...] [options]`: start, measure, record."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench import e2e, report, scenarios, services, wrk
from bench.scenarios import Bench

# Health runs first, on a database holding only the warm-up's events: with the ack runs' tens of
# thousands of unprocessed events (the benchmark runs `serve --no-worker`) its backlog query would
# measure a backlog no running worker lets grow.
# `e2e` starts servers and databases of its own: the shipped `serve`, worker in-process.
SCENARIOS = ("health", "ack", "e2e", "memory", "drain", "alerting", "retention")
# Run only when named: they explain a figure rather than measure a target.
# `console` seeds a million events per database (minutes): run it by name.
# `logs-report` compares two commands' reading speed on one log (a gigabyte written first).
OPTIONAL = ("layers", "console", "logs-report")
DATABASES = ("sqlite", "postgresql")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks against a same-run raw-ASGI baseline (docs/benchmarks.md).",
        epilog="Example: python -m bench ack --db sqlite --repeat 1",
    )
    parser.add_argument("scenario", nargs="*", choices=[[], *SCENARIOS, *OPTIONAL], default=[])
    parser.add_argument("--db", action="append", choices=DATABASES, help="default: both")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (medians are reported)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one wrk run")
    parser.add_argument("--concurrency", default="1,16,64", help="ack concurrencies")
    parser.add_argument("--burst-seconds", type=float, default=10.0, help="length of one e2e burst")
    parser.add_argument("--drain-events", type=int, default=100_000, help="drain backlog size")
    parser.add_argument("--drain-seconds", type=float, default=30.0, help="bound of one drain")
    parser.add_argument(
        "--log-mb", type=int, default=1024, help="alerting-check / logs-report log size"
    )
    parser.add_argument(
        "--retention-events",
        type=int,
        help="old events (default: 200,000 on SQLite, 1,000,000 on PostgreSQL)",
    )
    parser.add_argument(
        "--console-events", type=int, default=1_000_000, help="console scenario's events"
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to the doc")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    # `timeout` and CI cancel with SIGTERM: leave through the ExitStack below, which stops the
    # services, the baseline and the PostgreSQL server (left running, their files held GBs of
    # /tmp).
    signal.signal(signal.SIGTERM, _leave)
    everything = (*SCENARIOS, *OPTIONAL)
    chosen = [s for s in everything if s in args.scenario] if args.scenario else list(SCENARIOS)
    databases = args.db or list(DATABASES)
    wrk.ensure_wrk()
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="timedify-bench-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        secret = scenarios.new_secret()
        procs: dict[str, services.Process] = {}
        urls: dict[str, str] = {}
        cluster = None
        if "sqlite" in databases:
            url = urls["sqlite"] = services.sqlite_database(workdir)
            procs["sqlite"] = services.service("sqlite", url, secret, workdir)
            stack.callback(procs["sqlite"].stop)
        if "postgresql" in databases:
            from tests.support.pgcluster import PgCluster

            cluster = PgCluster(fsync=True).init().start()
            stack.callback(cluster.destroy)
            url = urls["postgresql"] = services.postgres_database(cluster)
            procs["postgresql"] = services.service("postgresql", url, secret, workdir)
            stack.callback(procs["postgresql"].stop)
        base = services.baseline(workdir)
        stack.callback(base.stop)
        bench = Bench(
            workdir=workdir,
            secret=secret,
            seconds=args.seconds,
            repeat=args.repeat,
            concurrency=[int(c) for c in args.concurrency.split(",")],
            baseline=base,
            services=procs,
            cluster=cluster,
            drain_events=args.drain_events,
            drain_seconds=args.drain_seconds,
            log_megabytes=args.log_mb,
            retention_events=args.retention_events,
            database_urls=urls,
        )
        scenarios.warm_up(bench)
        results: dict[str, tuple[list[str], list[list[str]]]] = {}
        for name in chosen:
            print(f"running {name}...", file=sys.stderr, flush=True)
            before = len(bench.targets)
            results[name] = (_run(name, bench, args, chosen), bench.targets[before:])
        settings = (
            f"{args.repeat} repetitions (medians) of {args.seconds:g} s runs, "
            f"{args.burst_seconds:g} s e2e bursts; whole run {time.monotonic() - started:.0f} s"
        )
    # A run on some databases only is recorded beside the figures of both, not over them.
    only = "" if set(databases) == set(DATABASES) else ":" + ",".join(databases)
    blocks = {
        name + only: report.block(name + only, sections, _targets(rows), settings)
        for name, (sections, rows) in results.items()
    }
    print("\n".join(blocks.values()))
    if bench.targets:  # an explanatory scenario alone measures none
        print(scenarios.targets(bench.targets))
    if not args.no_record:
        report.update(blocks, everything)
        print(f"updated {report.DOC}", file=sys.stderr)
    return 0


def _targets(rows: list[list[str]]) -> str | None:
    """A scenario's targets table; None for an explanatory scenario, which measures none."""
    return scenarios.targets(rows, heading=False) if rows else None


def _run(name: str, bench: Bench, args: argparse.Namespace, chosen: list[str]) -> list[str]:
    """One scenario's sections (Markdown), its targets added to `bench.targets`."""
    if name == "ack":
        return [scenarios.ack(bench)]
    if name == "e2e":
        return [e2e.scenario(bench, args.burst_seconds)]
    if name == "health":
        return [scenarios.health(bench)]
    if name == "drain":
        return [scenarios.drain(bench)]
    if name == "alerting":
        return [scenarios.alerting(bench)]
    if name == "layers":
        return [scenarios.layers(bench)]
    if name == "logs-report":
        return [_logs_report(bench)]
    if name == "console":
        return _console(bench, args.console_events)
    if name == "retention":
        return [scenarios.retention_cleanup(bench, db) for db in bench.services]
    return [scenarios.memory(bench, ack_ran="ack" in chosen)]


def _logs_report(bench: Bench) -> str:
    """logs-report next to alerting-check on one generated log (see bench/logsreport.py)."""
    from bench import logsreport

    url = services.sqlite_database(bench.workdir, "logs-report")
    figures = logsreport.measure(
        bench.workdir, url, bench.secret, bench.log_megabytes, bench.repeat
    )
    ratio = figures["alerting-check"] / figures["logs-report"]
    bench.target("logs-report x alerting-check", ratio, logsreport.TARGET_RATIO, "", False)
    return logsreport.section(figures)


def _console(bench: Bench, count: int) -> list[str]:
    """The console scenario on a fresh database of each kind (see bench/console.py)."""
    from bench import console

    sections = []
    for db in bench.services:
        if db == "sqlite":
            url = services.sqlite_database(bench.workdir, "console")
        else:
            assert bench.cluster is not None
            url = services.postgres_database(bench.cluster)
        section, rows = console.scenario(
            db, url, bench.baseline, bench.secret, bench.workdir, count, bench.repeat
        )
        sections.append(section)
        bench.targets.extend(rows)
    return sections


def _leave(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
