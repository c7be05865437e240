"""The weekly log review: a window of our JSON log lines at a glance (`timedify logs-report`).

Reads the lines `alerting-check` reads (plain, or behind a `fly logs` prefix; `log_scan` skips
the prefix and compares times) but looks at every line, not only the errors: webhooks received,
acknowledged and rejected per topic and reason, processing outcomes, dead letters opened and
resolved, error classes with one sample line each, the Shopify Admin API's 429s and 5xx, the
acknowledgement latency percentiles and the shops with the most failures.

Most lines are the two written once per webhook (`HotLogger`): those in their exact shape are
found and counted block by block by one expression (`HOT_LINE`), the others JSON-parsed one by
one. That is CPU-bound, so a log over `PARALLEL_AFTER` blocks is read by worker processes: a
file in segments each reads itself, a stream in blocks handed to them; their reports are
merged in log order.

Nothing personal leaves: every value printed is one the log itself holds under the log's rules
(`timedify.logs`), and then only if it is shaped like an identifier (`logs.identifier`), with
tokens masked (`logs.scrub_text`); a sample shows only the context fields in `SAMPLE_FIELDS`.
"""

from __future__ import annotations

import functools
import math
import os
import re
import stat
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, islice, repeat
from multiprocessing import get_context
from pathlib import Path
from typing import IO, Any

import orjson

from timedify.logs import identifier, scrub_text
from timedify.toolkit import log_scan

ACKNOWLEDGED = {"webhook_accepted": "accepted", "webhook_duplicate": "duplicate"}
# The worker's outcome lines (processing/worker.py); `event_processed` carries its state.
HOT_EVENTS = frozenset({*ACKNOWLEDGED, "event_processed"})
PROCESSING = {"event_failed": "retrying", "event_dead_lettered": "dead", "event_lease_lost": "lost"}
# The context fields a sample line shows; messages (`error`, `detail`) may quote anything.
SAMPLE_FIELDS = (
    "time",
    "event",
    "level",
    "topic",
    "shop",
    "webhook_id",
    "status",
    "reason",
    "error_class",
    "error_type",
    "operation",
    "outcome",
    "attempt",
)
NONE = "(none)"
PERCENTILES = (50, 95, 99)
# A log longer than this many blocks is read by worker processes too: parsing every line is
# CPU-bound, and below this size starting the processes costs more than it saves.
PARALLEL_AFTER = 16
# A file is cut into segments of about this size at line ends; each process reads its own from
# the file, so no bytes pass between processes.
SEGMENT_SIZE = 16 * 1024 * 1024

# The lines written once per webhook, exactly as `HotLogger` renders them (the acknowledgement
# in ingest/endpoint.py, the outcome in processing/worker.py), found in a whole block by one
# expression instead of being parsed one by one (a week's log reads ~1.3 x faster). Strings
# are printable ASCII without quotes or escapes and numbers plain, so the text is exactly what
# JSON parsing gives. Any other shape (another key order, an extra field, an escape) is parsed
# line by line.
_STR = rb'"[ !#-\[\]-~]*"'
_OPT = rb"(?:" + _STR + rb"|null)"
_CAP = rb'"([ !#-\[\]-~]*)"'
_INT = rb"-?(?:0|[1-9][0-9]{0,14})"
_NUM = rb"(" + _INT + rb"(?:\.[0-9]{1,15})?)"
HOT_LINE = re.compile(
    rb"\n[^{\n]*\{(?:"
    rb'"topic":' + _CAP + rb',"shop":' + _OPT + rb',"webhook_id":' + _OPT
    + rb',"status":200,"duration_ms":' + _NUM
    + rb'|"note":' + _OPT + rb',"topic":' + _CAP + rb',"shop":' + _OPT
    + rb',"webhook_id":' + _OPT + rb',"status":' + _CAP + rb',"attempt":' + _INT
    + rb',"duration_ms":' + _NUM
    + rb'),"event":"(webhook_accepted|webhook_duplicate|event_processed)","level":"info"'
    rb',"time":"([0-9:.T-]{26}Z)"\}(?=\n|\Z)'
)  # fmt: skip
# `HOT_LINE.split` gives, per match, the text before it and these groups.
_GROUPS = 8


@functools.lru_cache(maxsize=4096)
def mask(value: str) -> str:
    """`value` as a log line may show it: identifier-shaped, tokens replaced by a marker."""
    return scrub_text(identifier(value) or "")


def _raw(value: object) -> str | None:
    return value if type(value) is str else None


def _text(value: object) -> str:
    if value is None or value == "":
        return NONE
    return mask(value if isinstance(value, str) else str(value))


@dataclass
class LogsReport:
    """What one read of the logs found; counters keyed by masked values only.

    The two lines written once per webhook (its acknowledgement, its processing) are counted
    by their raw `(event, topic, status)` in `hot` and masked once per key by `fold`.
    """

    since: datetime | None = None
    bytes: int = 0
    lines: int = 0
    unreadable: int = 0
    skipped_before_since: int = 0
    hot: dict[tuple[str, object, object], int] = field(default_factory=dict)
    received: Counter[str] = field(default_factory=Counter)
    acknowledged: Counter[tuple[str, str]] = field(default_factory=Counter)
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)
    processing: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_letters_opened: int = 0
    dead_letters_resolved: int = 0
    error_classes: Counter[str] = field(default_factory=Counter)
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)
    admin_calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    shop_failures: Counter[str] = field(default_factory=Counter)
    # Acknowledgement times by value: logged to 0.01 ms, so a week holds few distinct ones.
    ack_ms: Counter[float] = field(default_factory=Counter)

    def add(self, record: dict[str, Any]) -> None:
        """Count one log record (already inside the window)."""
        self.lines += 1
        event = record.get("event")
        event = event if type(event) is str else None  # anything else is a crafted line
        if event in HOT_EVENTS:
            self._add_hot(event, record)
        elif event == "webhook_rejected":
            topic = _text(record.get("topic"))
            self.received[topic] += 1
            self.rejected[topic, _text(record.get("reason"))] += 1
        elif event in PROCESSING:
            self.processing[_text(record.get("topic")), PROCESSING[event]] += 1
            self.dead_letters_opened += event == "event_dead_lettered"
        elif event == "admin_api_call":
            self.admin_calls[_text(record.get("operation")), _text(record.get("outcome"))] += 1
        elif event == "dead_letter_dismissed":
            self.dead_letters_resolved += 1
        elif event == "dead_letter_replayed":
            # A replay that failed again leaves the dead letter open.
            self.dead_letters_resolved += record.get("status") == "processed"
        if record.get("error_class") or record.get("level") in log_scan.ERROR_LEVELS:
            self.add_failure(record)

    def _add_hot(self, event: str, record: dict[str, Any]) -> None:
        # The same as `read`'s inlined path, for records counted one by one.
        topic, status = record.get("topic"), record.get("status")
        key = (
            event,
            topic if type(topic) is str else None,
            status if type(status) is str else None,
        )
        self.hot[key] = self.hot.get(key, 0) + 1
        duration = record.get("duration_ms")
        if event != "event_processed" and (type(duration) is float or type(duration) is int):
            self.ack_ms[duration] += 1

    def add_failure(self, record: dict[str, Any]) -> None:
        """Count a line with an error class or an error level, keep the first as the sample."""
        name = _text(record.get("error_class") or "unclassified")
        self.error_classes[name] += log_scan.occurrences(record)  # a repeated failure's count
        if name not in self.samples:
            self.samples[name] = sample(record)
        if record.get("shop"):
            self.shop_failures[_text(record.get("shop"))] += 1

    def fold(self) -> None:
        """Move the raw `hot` counts into the masked counters (once, before printing)."""
        for (event, topic, status), count in self.hot.items():
            masked = _text(topic)
            if event == "event_processed":
                self.processing[masked, _text(status)] += count
            else:
                self.received[masked] += count
                self.acknowledged[masked, ACKNOWLEDGED[event]] += count
        self.hot.clear()

    def merge(self, later: LogsReport) -> None:
        """Add the counts of `later`, a report of the lines that follow this one's."""
        self.bytes += later.bytes
        self.lines += later.lines
        self.unreadable += later.unreadable
        self.skipped_before_since += later.skipped_before_since
        for key, count in later.hot.items():
            self.hot[key] = self.hot.get(key, 0) + count
        counters: tuple[tuple[Counter[Any], Counter[Any]], ...] = (
            (self.received, later.received),
            (self.acknowledged, later.acknowledged),
            (self.rejected, later.rejected),
            (self.processing, later.processing),
            (self.error_classes, later.error_classes),
            (self.admin_calls, later.admin_calls),
            (self.shop_failures, later.shop_failures),
            (self.ack_ms, later.ack_ms),
        )
        for mine, theirs in counters:
            mine.update(theirs)
        self.dead_letters_opened += later.dead_letters_opened
        self.dead_letters_resolved += later.dead_letters_resolved
        for name, shown in later.samples.items():
            self.samples.setdefault(name, shown)  # the earlier line stays the sample

    def percentiles(self) -> dict[str, float]:
        """Nearest-rank p50/p95/p99 and the maximum of the acknowledgement times, in ms."""
        if not self.ack_ms:
            return {}
        ordered = sorted(self.ack_ms.items())
        count = self.ack_ms.total()
        ranks = {f"p{p}": max(1, math.ceil(p / 100 * count)) for p in PERCENTILES}
        found: dict[str, float] = {}
        seen = 0
        for value, times in ordered:
            seen += times
            for name, rank in ranks.items():
                if name not in found and seen >= rank:
                    found[name] = value
        return {**found, "max": ordered[-1][0]}

    def admin_totals(self) -> dict[str, int]:
        """Admin API calls in all, and the 429s and 5xx among them."""
        totals = {"calls": 0, "http_429": 0, "http_5xx": 0}
        for (_operation, outcome), count in self.admin_calls.items():
            totals["calls"] += count
            if outcome in totals:
                totals[outcome] += count
        return totals


def sample(record: dict[str, Any]) -> dict[str, Any]:
    """The context fields of one line, masked; numbers as they are."""
    shown: dict[str, Any] = {}
    for name in SAMPLE_FIELDS:
        value = record.get(name)
        if value is None:
            continue
        numeric = type(value) in (int, float)
        shown[name] = value if numeric else _text(value)
    return shown


def default_jobs() -> int:
    """One reading process per CPU this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform
        return os.cpu_count() or 1


def read(stream: IO[bytes], since: datetime | None = None, jobs: int = 1) -> LogsReport:
    """Read every log line of `stream`; only lines at or after `since` are counted.

    With `jobs` > 1, the blocks after the first `PARALLEL_AFTER` are counted by that many
    worker processes, a few blocks ahead of the merge, which takes their reports in order.
    """
    report = LogsReport(since=since)
    key = log_scan.to_since_key(since) if since else None
    blocks = log_scan.blocks(stream)
    _read_here(islice(blocks, PARALLEL_AFTER) if jobs > 1 else blocks, key, report)
    rest = next(blocks, None) if jobs > 1 else None
    if rest is not None:
        _read_in_processes(chain([rest], blocks), key, report, jobs)
    report.fold()
    return report


def read_path(path: Path, since: datetime | None = None, jobs: int = 1) -> LogsReport:
    """`read` of a file; a big regular file is read in segments, one process per job."""
    with path.open("rb") as stream:
        info = os.fstat(stream.fileno())
        small = info.st_size <= PARALLEL_AFTER * log_scan.BLOCK_SIZE
        if jobs <= 1 or small or not stat.S_ISREG(info.st_mode):
            return read(stream, since, jobs)
        starts = _segment_starts(stream, info.st_size)
    pool = _pool(jobs)
    if pool is None:
        with path.open("rb") as stream:
            return read(stream, since)
    report = LogsReport(since=since)
    key = log_scan.to_since_key(since) if since else None
    ends = [*starts[1:], info.st_size]
    with pool:
        for part in pool.map(read_segment, repeat(str(path)), starts, ends, repeat(key)):
            report.merge(part)  # in file order: the earliest line of a class stays its sample
    report.fold()
    return report


def _segment_starts(stream: IO[bytes], size: int) -> list[int]:
    """Offsets about SEGMENT_SIZE apart, each the start of a line."""
    starts = [0]
    for nominal in range(SEGMENT_SIZE, size, SEGMENT_SIZE):
        stream.seek(nominal - 1)
        stream.readline()  # to the end of the line holding the byte before `nominal`
        start = stream.tell()
        if starts[-1] < start < size:
            starts.append(start)
    return starts


def read_segment(path: str, start: int, end: int, key: str | None) -> LogsReport:
    """The report of the lines in bytes `start`..`end` of a file (in a worker process)."""
    with open(path, "rb") as stream:
        stream.seek(start)
        return read_part(stream.read(end - start), key)


def _pool(jobs: int) -> ProcessPoolExecutor | None:
    """Worker processes, or None where the system gives none (no /dev/shm for their locks)."""
    try:
        # `spawn`: a fresh interpreter per worker, whatever threads the caller has started.
        return ProcessPoolExecutor(jobs, mp_context=get_context("spawn"))
    except OSError:
        return None


def _read_here(blocks: Iterable[bytearray], key: str | None, report: LogsReport) -> None:
    for block in blocks:
        report.bytes += len(block)
        _read_block(block, key, report)


def _read_in_processes(
    blocks: Iterator[bytearray], key: str | None, report: LogsReport, jobs: int
) -> None:
    pool = _pool(jobs)
    if pool is None:
        _read_here(blocks, key, report)
        return
    pending: deque[Future[LogsReport]] = deque()
    with pool:
        for block in blocks:
            pending.append(pool.submit(read_part, block, key))
            # Bounded: a few blocks per worker in flight, never the whole log in memory.
            if len(pending) >= 2 * jobs:
                report.merge(pending.popleft().result())
        while pending:
            report.merge(pending.popleft().result())


def read_part(block: bytes | bytearray, key: str | None) -> LogsReport:
    """The report of one block of whole lines (in a worker process), to merge in order."""
    part = LogsReport(bytes=len(block))
    _read_block(block, key, part)
    return part


def _count_hot_lines(block: bytes | bytearray, key: str | None, report: LogsReport) -> bytes:
    """Count the block's `HOT_LINE`s; the other lines of the block, in their order.

    Counted by C-level counts over the groups, not line by line. A block where the window
    starts is left whole to the per-line reading, which decides line by line.
    """
    parts = HOT_LINE.split(b"\n" + block)
    if len(parts) == 1:
        return parts[0]
    times = parts[_GROUPS - 1 :: _GROUPS]
    if key is not None:
        start = f"{key}Z".encode()  # our times are ASCII: bytes order is text order
        if max(times) < start:
            report.skipped_before_since += len(times)
            return b"".join(parts[::_GROUPS])
        if min(times) < start:
            return bytes(block)
    report.lines += len(times)
    events, hot = parts[6::_GROUPS], report.hot
    shapes = Counter(
        zip(events, parts[1::_GROUPS], parts[3::_GROUPS], parts[4::_GROUPS], strict=True)
    )
    for (event, topic, outcome_topic, status), count in shapes.items():
        entry = (
            event.decode(),
            (topic if topic is not None else outcome_topic).decode(),
            None if status is None else status.decode(),  # the acknowledgement's is 200
        )
        hot[entry] = hot.get(entry, 0) + count
    durations = Counter(zip(events, parts[2::_GROUPS], parts[5::_GROUPS], strict=True))
    for (event, duration, outcome_duration), count in durations.items():
        if event != b"event_processed":
            text = duration if duration is not None else outcome_duration
            report.ack_ms[float(text) if b"." in text else int(text)] += count
    return b"".join(parts[::_GROUPS])


def _read_block(block: bytes | bytearray, key: str | None, report: LogsReport) -> None:
    """Count the lines of one block.

    The per-webhook lines in their usual shape by `_count_hot_lines`; the rest in one loop
    with local names, the per-webhook lines of other shapes counted inline (`add` does the
    same for the others, one method call each).
    """
    rest = _count_hot_lines(block, key, report)
    loads, decode_error, before = orjson.loads, orjson.JSONDecodeError, log_scan.before
    hot, add = report.hot, report.add
    times: list[float] = []
    durations = times.append
    own_key = f"{key}Z"
    counted = skipped = unreadable = 0
    for line in rest.split(b"\n"):
        if not line:
            continue
        # Our own lines start with `{`; a shipper's prefix ends where the object begins.
        brace = 0 if line[0] == 123 else line.find(b"{")
        try:
            record = loads(line if brace == 0 else line[brace:]) if brace != -1 else None
        except decode_error:
            record = None
        if type(record) is not dict:
            unreadable += 1
            continue
        if key is not None:
            when = record.get("time")
            # `timedify.logs`'s own format (27 characters, UTC): compared as text.
            if type(when) is str and len(when) == 27 and when[26] == "Z":
                if when < own_key:
                    skipped += 1
                    continue
            elif before(record, bytes(line[:brace]), key):
                skipped += 1
                continue
        event = record.get("event")
        if (
            type(event) is str
            and event in HOT_EVENTS
            and record.get("level") == "info"
            and not record.get("error_class")
        ):
            topic, status = record.get("topic"), record.get("status")
            entry = (
                event,
                topic if type(topic) is str else None,
                status if type(status) is str else None,
            )
            hot[entry] = hot.get(entry, 0) + 1
            duration = record.get("duration_ms")
            if event != "event_processed" and (type(duration) is float or type(duration) is int):
                durations(duration)
            counted += 1
        else:
            add(record)
    report.ack_ms.update(times)  # one C-level count per block, not one per line
    report.lines += counted
    report.unreadable += unreadable
    report.skipped_before_since += skipped


def _top(counter: Counter[Any], limit: int) -> list[tuple[Any, int]]:
    # Ties in a stable order (by key), so two reads of one log print the same report.
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:limit]


def to_json(report: LogsReport, limit: int = 10) -> dict[str, Any]:
    """The report as one JSON document (after `read`, or `add` and then `fold`)."""
    report.fold()
    topics = sorted(report.received)
    return {
        "since": report.since.replace(microsecond=0).isoformat() if report.since else None,
        "bytes": report.bytes,
        "lines": report.lines,
        "unreadable_lines": report.unreadable,
        "lines_before_since": report.skipped_before_since,
        "webhooks": {
            topic: {
                "received": report.received[topic],
                "accepted": report.acknowledged[topic, "accepted"],
                "duplicate": report.acknowledged[topic, "duplicate"],
                "rejected": sum(n for (t, _), n in report.rejected.items() if t == topic),
            }
            for topic in topics
        },
        "rejections": [
            {"topic": t, "reason": r, "count": n} for (t, r), n in _top(report.rejected, 1000)
        ],
        "processing": [
            {"topic": t, "outcome": o, "count": n}
            for (t, o), n in sorted(report.processing.items())
        ],
        "dead_letters": {
            "opened": report.dead_letters_opened,
            "resolved": report.dead_letters_resolved,
        },
        "errors": [
            {"error_class": name, "count": n, "sample": report.samples[name]}
            for name, n in _top(report.error_classes, limit)
        ],
        "shopify_api": {
            **report.admin_totals(),
            "by_operation": [
                {"operation": op, "outcome": o, "count": n}
                for (op, o), n in sorted(report.admin_calls.items())
            ],
        },
        "acknowledgement_ms": {"count": report.ack_ms.total(), **report.percentiles()},
        "shops_by_failures": [
            {"shop": shop, "failures": n} for shop, n in _top(report.shop_failures, limit)
        ],
    }


def to_markdown(doc: dict[str, Any]) -> str:
    """The JSON document of `to_json` as a markdown page (for an issue or a chat message)."""
    since = doc["since"] or "the beginning of the log"
    out = [
        "# Timedify weekly log review",
        "",
        f"Since {since}: {doc['lines']:,} lines read ({doc['bytes']:,} bytes; "
        f"{doc['unreadable_lines']:,} not JSON, {doc['lines_before_since']:,} before the window).",
    ]
    webhooks = [[t, v["received"], v["accepted"], v["duplicate"], v["rejected"]]
                for t, v in doc["webhooks"].items()]  # fmt: skip
    out += _section(
        "Webhooks", ["topic", "received", "accepted", "duplicate", "rejected"], webhooks
    )
    rejections = [[r["topic"], r["reason"], r["count"]] for r in doc["rejections"]]
    out += _section("Rejections", ["topic", "reason", "count"], rejections)
    processing = [[p["topic"], p["outcome"], p["count"]] for p in doc["processing"]]
    out += _section("Processing outcomes", ["topic", "outcome", "count"], processing)
    dead = doc["dead_letters"]
    out += ["", "## Dead letters", "", f"{dead['opened']} opened, {dead['resolved']} resolved."]
    errors = [[e["error_class"], e["count"], _inline(e["sample"])] for e in doc["errors"]]
    out += _section("Error classes", ["error class", "lines", "sample"], errors)
    api = doc["shopify_api"]
    out += [
        "",
        "## Shopify Admin API",
        "",
        f"{api['calls']} calls: {api['http_429']} answered 429, {api['http_5xx']} answered 5xx.",
    ]
    calls = [[c["operation"], c["outcome"], c["count"]] for c in api["by_operation"]]
    out += ["", *_table(["operation", "outcome", "calls"], calls)] if calls else []
    ack = doc["acknowledgement_ms"]
    timing = ", ".join(f"{k} {ack[k]:g} ms" for k in ("p50", "p95", "p99", "max") if k in ack)
    out += ["", "## Acknowledgement times", "", f"{ack['count']:,} acknowledged. {timing}".strip()]
    shops = [[s["shop"], s["failures"]] for s in doc["shops_by_failures"]]
    out += _section("Shops by failures", ["shop", "failure lines"], shops)
    return "\n".join(out) + "\n"


def _section(title: str, columns: list[str], rows: list[list[Any]]) -> list[str]:
    return ["", f"## {title}", "", *(_table(columns, rows) if rows else ["None."])]


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    if not rows:
        return []
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _cell(value: Any) -> str:
    text = f"{value:,}" if type(value) is int else str(value)
    return text.replace("|", "\\|")


def _inline(fields: dict[str, Any]) -> str:
    return "`" + " ".join(f"{k}={v}" for k, v in fields.items()) + "`"


def notify(url: str, markdown: str, timeout: float = 10.0) -> None:
    """Post the report to a Slack-compatible incoming webhook (`{"text": ...}`)."""
    import httpx  # only when posting: the report itself starts without it

    response = httpx.post(url, json={"text": markdown}, timeout=timeout)
    response.raise_for_status()
