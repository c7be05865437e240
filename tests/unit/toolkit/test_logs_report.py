"""`timedify logs-report` on crafted logs: exact counts, nothing personal, fly logs prefixes."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from timedify import logs
from timedify.ingest import endpoint
from timedify.logs import NOT_AN_IDENTIFIER
from timedify.processing import worker
from timedify.records import AttemptResult, ClaimedEvent, Outcome
from timedify.toolkit import log_scan, logs_report

FLY = b"2026-11-28T06:00:01Z app[683d5e0b] ams [info]"
SINCE = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
IN_WINDOW = "2026-11-27T10:00:00.000000Z"
OLD = "2026-11-20T10:00:00.000000Z"


def line(event: str, level: str = "info", time: str = IN_WINDOW, **fields: object) -> bytes:
    return orjson.dumps({**fields, "event": event, "level": level, "time": time})


def accepted(
    topic: str, duration: float, event: str = "webhook_accepted", time: str = IN_WINDOW
) -> bytes:
    # The shape `HotLogger` writes for every acknowledged webhook.
    return line(
        event,
        time=time,
        topic=topic,
        shop="a.myshopify.com",
        webhook_id="w-1",
        status=200,
        duration_ms=duration,
    )


def week() -> list[bytes]:
    """A crafted week: every kind of line the report counts, some behind `fly logs` prefixes."""
    lines = [accepted("orders/create", float(ms)) for ms in range(1, 101)]  # 1..100 ms
    lines += [FLY + accepted("app/uninstalled", 7.5)] * 3
    lines += [accepted("orders/create", 2.0, "webhook_duplicate")] * 2
    lines += [
        line(
            "webhook_rejected",
            "warning",
            topic="orders/create",
            reason="invalid_signature",
            status=401,
        )
    ] * 4
    lines += [
        FLY
        + line(
            "webhook_rejected",
            "error",
            topic="app/uninstalled",
            reason="database_unavailable",
            status=503,
            error_class="db",
        )
    ] * 2
    lines += [line("event_processed", topic="orders/create", status="processed")] * 90
    lines += [line("event_processed", topic="orders/create", status="ignored")] * 5
    lines += [
        line(
            "event_failed",
            "warning",
            topic="orders/create",
            shop="b.myshopify.com",
            error_class="webhook",
            error_type="KeyError",
            status="retrying",
        )
    ] * 3
    lines += [
        line(
            "event_dead_lettered",
            "error",
            topic="orders/create",
            shop="b.myshopify.com",
            error_class="webhook",
            error_type="KeyError",
            status="dead",
        )
    ] * 2
    lines += [line("dead_letter_dismissed", dead_letter_id=1)]
    lines += [line("dead_letter_replayed", dead_letter_id=n, status="processed") for n in (2, 3, 4)]
    lines += [line("dead_letter_replayed", dead_letter_id=5, status="dead", error_type="KeyError")]
    lines += [line("console_dead_letters_replayed", replayed=4, failed=1)]  # not counted twice
    lines += [
        line(
            "admin_api_call",
            operation="currentAppInstallation",
            outcome="ok",
            shop="a.myshopify.com",
            status=200,
        )
    ] * 10
    lines += [
        FLY
        + line(
            "admin_api_call",
            "warning",
            operation="currentAppInstallation",
            outcome="http_429",
            status=429,
            error_class="http_429",
            shop="c.myshopify.com",
        )
    ] * 6
    lines += [
        line(
            "admin_api_call",
            "warning",
            operation="metafieldsSet",
            outcome="http_5xx",
            status=502,
            error_class="http_5xx",
            shop="c.myshopify.com",
        )
    ] * 1
    lines += [line("worker_error", "warning", error_class="db", error_type="OperationalError")]
    lines += [line("service_crashed", "critical")]
    # Outside the window, and lines that are not ours: never counted.
    lines += [line("webhook_rejected", "error", OLD, topic="x", error_class="db")] * 7
    lines += [b"Starting machine", b"{broken", b"[1, 2]", FLY + b"no json here"]
    return lines


def report_of(lines: list[bytes], since: datetime | None = SINCE) -> dict[str, object]:
    return logs_report.to_json(logs_report.read(io.BytesIO(b"\n".join(lines) + b"\n"), since))


def test_counts_every_kind_of_line_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny block size splits lines between reads: they are still counted whole, once."""
    monkeypatch.setattr(log_scan, "BLOCK_SIZE", 97)
    doc = report_of(week())
    assert doc["webhooks"] == {
        "app/uninstalled": {"received": 5, "accepted": 3, "duplicate": 0, "rejected": 2},
        "orders/create": {"received": 106, "accepted": 100, "duplicate": 2, "rejected": 4},
    }
    assert doc["rejections"] == [
        {"topic": "orders/create", "reason": "invalid_signature", "count": 4},
        {"topic": "app/uninstalled", "reason": "database_unavailable", "count": 2},
    ]
    assert doc["processing"] == [
        {"topic": "orders/create", "outcome": "dead", "count": 2},
        {"topic": "orders/create", "outcome": "ignored", "count": 5},
        {"topic": "orders/create", "outcome": "processed", "count": 90},
        {"topic": "orders/create", "outcome": "retrying", "count": 3},
    ]
    assert doc["dead_letters"] == {"opened": 2, "resolved": 4}
    assert [(e["error_class"], e["count"]) for e in doc["errors"]] == [  # type: ignore[attr-defined]
        ("http_429", 6),
        ("webhook", 5),
        ("db", 3),
        ("http_5xx", 1),
        ("unclassified", 1),
    ]
    assert doc["shopify_api"]["calls"] == 17  # type: ignore[index]
    assert doc["shopify_api"]["http_429"] == 6  # type: ignore[index]
    assert doc["shopify_api"]["http_5xx"] == 1  # type: ignore[index]
    assert doc["shops_by_failures"] == [
        {"shop": "c.myshopify.com", "failures": 7},
        {"shop": "b.myshopify.com", "failures": 5},
    ]
    assert doc["lines_before_since"] == 7
    assert doc["unreadable_lines"] == 4


def test_acknowledgement_percentiles_are_nearest_rank() -> None:
    """100 acks of 1..100 ms: p50 50, p95 95, p99 99, max 100 (duplicates count as acks)."""
    lines = [accepted("orders/create", float(ms)) for ms in range(100, 0, -1)]
    assert report_of(lines)["acknowledgement_ms"] == {
        "count": 100,
        "p50": 50.0,
        "p95": 95.0,
        "p99": 99.0,
        "max": 100.0,
    }
    with_duplicates = report_of(week())["acknowledgement_ms"]
    assert with_duplicates["count"] == 105  # type: ignore[index]


def test_the_window_uses_the_fly_prefix_when_a_line_has_no_time() -> None:
    """Without its own `time`, a line is placed by the prefix `fly logs` writes before it."""
    bare = orjson.dumps({"event": "webhook_rejected", "level": "warning", "reason": "r"})
    doc = report_of([b"2026-11-20T06:00:00Z app[1] ams [info]" + bare, FLY + bare])
    assert doc["rejections"] == [{"topic": "(none)", "reason": "r", "count": 1}]
    assert doc["lines_before_since"] == 1


PERSONAL = [
    "jane.doe@example.com",
    "Jane Doe",
    "+49 170 1234567",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    "shpat_0123456789abcdef",
    "Hauptstrasse 1",
]


def test_no_personal_datum_or_token_reaches_the_report() -> None:
    """Values not shaped like identifiers are masked; messages and forbidden fields never shown."""
    jwt = PERSONAL[3]
    lines = [
        line("webhook_rejected", "warning", topic="Jane Doe", reason="jane.doe@example.com"),
        line(
            "event_dead_lettered",
            "error",
            topic="orders/create",
            shop="jane.doe@example.com",
            error_class="webhook",
            error_type="KeyError",
            error="customer Jane Doe not found",
            email="jane.doe@example.com",
            phone="+49 170 1234567",
            webhook_id=jwt,
            address="Hauptstrasse 1",
        ),
        line(
            "admin_api_call",
            "warning",
            operation="+49 170 1234567",
            outcome="http_5xx",
            error_class=f"x?id_token={jwt}",
            access_token="shpat_0123456789abcdef",
            detail="Hauptstrasse 1",
            shop="Jane Doe",
        ),
        accepted("Hauptstrasse 1", 1.0),
    ]
    report = logs_report.read(io.BytesIO(b"\n".join(lines)), SINCE)
    doc = logs_report.to_json(report)
    text = orjson.dumps(doc).decode() + logs_report.to_markdown(doc)
    for datum in PERSONAL:
        assert datum not in text, datum
    assert "jane" not in text.lower()
    assert NOT_AN_IDENTIFIER in text  # masked, not dropped: the counts still add up
    assert doc["dead_letters"] == {"opened": 1, "resolved": 0}


def test_odd_values_of_a_crafted_line_are_counted_not_fatal() -> None:
    lines = [
        orjson.dumps({"event": ["webhook_accepted"], "level": "info", "time": IN_WINDOW}),
        orjson.dumps(
            {
                "event": "webhook_accepted",
                "level": "info",
                "topic": {"a": 1},
                "duration_ms": "3",
                "time": IN_WINDOW,
            }
        ),
        orjson.dumps({"event": "admin_api_call", "level": "error", "shop": 5, "time": IN_WINDOW}),
    ]
    doc = report_of(lines)
    assert doc["lines"] == 3
    assert doc["webhooks"]["(none)"]["accepted"] == 1  # type: ignore[index]
    assert doc["acknowledgement_ms"] == {"count": 0}


def test_markdown_shows_the_same_counts() -> None:
    doc = report_of(week())
    page = logs_report.to_markdown(doc)
    assert page.startswith("# Timedify weekly log review\n")
    assert "| orders/create | 106 | 100 | 2 | 4 |" in page
    assert "| app/uninstalled | database_unavailable | 2 |" in page
    assert "2 opened, 4 resolved." in page
    assert "17 calls: 6 answered 429, 1 answered 5xx." in page
    ack = doc["acknowledgement_ms"]
    assert f"105 acknowledged. p50 {ack['p50']:g} ms, p95 {ack['p95']:g} ms" in page  # type: ignore[index]
    assert "| c.myshopify.com | 7 |" in page
    sample = next(row for row in page.splitlines() if row.startswith("| http_429 |"))
    assert "operation=currentAppInstallation" in sample


def test_an_empty_log_gives_an_empty_report() -> None:
    doc = report_of([])
    page = logs_report.to_markdown(doc)
    assert doc["lines"] == 0
    assert "0 opened, 0 resolved." in page
    assert "## Webhooks\n\nNone." in page


def reference_report(data: bytes, since: datetime) -> dict[str, object]:
    """The plain per-line reading (`parse_line`, `before`, `add`) that `read` must equal."""
    report = logs_report.LogsReport(since=since, bytes=len(data))
    key = log_scan.to_since_key(since)
    for text in data.split(b"\n"):
        if not text:
            continue
        if (record := log_scan.parse_line(text)) is None:
            report.unreadable += 1
        elif log_scan.before(record, text[: text.find(b"{")], key):
            report.skipped_before_since += 1
        else:
            report.add(record)
    return logs_report.to_json(report)


records = st.fixed_dictionaries(
    {
        "time": st.sampled_from(
            [IN_WINDOW, OLD, "2026-11-27T10:00:00Z", "2026-11-21T08:00:01+02:00"]
        ),
        "level": st.sampled_from(["info", "warning", "error"]),
        "event": st.sampled_from([*logs_report.HOT_EVENTS, "webhook_rejected", "event_failed"]),
    },
    optional={
        "topic": st.sampled_from(["orders/create", "app/uninstalled", "a b", 3]),
        "status": st.sampled_from([200, "processed", "ignored"]),
        "duration_ms": st.sampled_from([1.5, 2, "3"]),
        "error_class": st.sampled_from(["db", "webhook", ""]),
        "shop": st.sampled_from(["a.myshopify.com", "x@y"]),
    },
)
# The two shapes `HotLogger` writes per webhook, key for key, which `read` counts without
# parsing them; and near misses of them, which it must parse like any other line.
_texts = st.sampled_from(["orders/create", "a b", "", "é/x", 'q"x', "back\\slash"])
_optional = st.sampled_from(["a.myshopify.com", "w-1", None, "\u2028"])
_times = st.sampled_from(
    [IN_WINDOW, OLD, "2026-11-21T06:00:00.000000Z", "2026-11-21T05:59:59.999999Z", "2026-11-27"]
)
_durations = st.sampled_from([0, 3, 1.5, 12.25, -0.0, 0.1, 1e20, 1234567890123456, 2.5e-7])
acknowledgements = st.builds(
    lambda topic, shop, webhook_id, duration, event, time: {
        "topic": topic,
        "shop": shop,
        "webhook_id": webhook_id,
        "status": 200,
        "duration_ms": duration,
        "event": event,
        "level": "info",
        "time": time,
    },
    _texts, _optional, _optional, _durations,
    st.sampled_from(["webhook_accepted", "webhook_duplicate"]), _times,
)  # fmt: skip
outcomes = st.builds(
    lambda note, topic, shop, webhook_id, status, attempt, duration, time: {
        "note": note,
        "topic": topic,
        "shop": shop,
        "webhook_id": webhook_id,
        "status": status,
        "attempt": attempt,
        "duration_ms": duration,
        "event": "event_processed",
        "level": "info",
        "time": time,
    },
    _optional, _texts, _optional, _optional, _texts, st.sampled_from([1, 12, -1, 1.0]),
    _durations, _times,
)  # fmt: skip
_near_misses = st.sampled_from(
    [
        lambda text: text.replace(b'":', b'": ', 1),
        lambda text: b'{"x":1,' + text[1:],
        lambda text: text + b" ",
        lambda text: text + b"\r",
        lambda text: text[:-1] + b',"level":"error"}',
        lambda text: text.replace(b'"level":"info"', b'"level":"warning"'),
        lambda text: text.replace(b'"status":200', b'"status":"200"'),
        lambda text: text.replace(b'"duration_ms":', b'"duration_ms":0'),
        lambda text: text.replace(b'"duration_ms":', b'"duration_ms":-'),
        lambda text: b"x{" + text,
    ]
)
hot_lines = st.builds(
    lambda record, prefix: prefix + orjson.dumps(record),
    st.one_of(acknowledgements, outcomes),
    st.sampled_from([b"", FLY]),
)
near_misses = st.builds(lambda text, mutate: mutate(text), hot_lines, _near_misses)
report_lines = st.one_of(
    records.map(orjson.dumps),
    records.map(lambda r: FLY + orjson.dumps(r)),
    hot_lines,
    hot_lines,
    hot_lines,
    near_misses,
    st.just(b"{broken"),
    st.just(b"plain text"),
)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(report_lines, max_size=40), block_size=st.integers(1, 600))
def test_read_equals_the_per_line_reading(lines: list[bytes], block_size: int) -> None:
    """The paths for the per-webhook lines count exactly what `add` counts, line by line."""
    data = b"\n".join(lines)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(log_scan, "BLOCK_SIZE", block_size)
        got = logs_report.to_json(logs_report.read(io.BytesIO(data), SINCE))
    assert got == reference_report(data, SINCE)


@settings(max_examples=300, deadline=None)
@example(lines=[accepted("a/b", 1.5, time=OLD), accepted("a/b", 2.5), b""], block_size=8000)
@given(
    lines=st.lists(st.one_of(hot_lines, hot_lines, near_misses), max_size=40),
    block_size=st.integers(1, 8000),
)
def test_the_per_webhook_lines_are_counted_as_the_per_line_reading_counts_them(
    lines: list[bytes], block_size: int
) -> None:
    """Blocks of mostly per-webhook lines, all before, all after or across the window's start."""
    data = b"\n".join(lines)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(log_scan, "BLOCK_SIZE", block_size)
        got = logs_report.to_json(logs_report.read(io.BytesIO(data), SINCE))
    assert got == reference_report(data, SINCE)


def test_the_lines_our_writers_write_per_webhook_are_counted_without_parsing() -> None:
    """What the endpoint and the worker log per webhook is the shape `HOT_LINE` takes whole.

    A change of those lines (a field added, renamed or moved) must change `HOT_LINE` too, or
    every such line would silently fall back to the per-line reading, at half the speed.
    """
    out = io.BytesIO()
    logs.configure_logging("INFO", "json", stream=out)
    try:
        endpoint.accepted_log.info(
            "webhook_accepted",
            topic="orders/create",
            shop="a.myshopify.com",
            webhook_id=logs.identifier("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
            status=200,
            duration_ms=round(0.00123456 * 100_000) / 100,
        )
        event = ClaimedEvent(
            id=1,
            webhook_id="w-1",
            topic="app/uninstalled",
            shop_domain="b.myshopify.com",
            event_id=None,
            triggered_at=None,
            received_at=datetime.now(UTC),
            payload=b"{}",
            attempts=1,
            lease_token="lease",
        )
        worker._log_outcome(event, Outcome(AttemptResult.PROCESSED), 0.0042)
        worker._log_outcome(event, Outcome(AttemptResult.IGNORED, note="topic ignored"), 0.001)
    finally:
        logs.configure_logging("INFO", "json", stream=io.BytesIO())
    written = out.getvalue()
    assert written.count(b"\n") == 3
    report = logs_report.LogsReport()
    rest = logs_report._count_hot_lines(written, None, report)
    assert rest.strip(b"\n") == b""
    assert report.lines == 3
    assert report.hot == {
        ("webhook_accepted", "orders/create", None): 1,
        ("event_processed", "app/uninstalled", "processed"): 1,
        ("event_processed", "app/uninstalled", "ignored"): 1,
    }
    assert dict(report.ack_ms) == {1.23: 1}


def test_percentiles_of_repeated_times_are_nearest_rank() -> None:
    """Times repeat (logged to 0.01 ms): ranks are counted through each value's repeats."""
    times = [1.0] * 50 + [2.0] * 45 + [3.0] * 4 + [4.0]
    doc = report_of([accepted("orders/create", ms) for ms in times])
    assert doc["acknowledgement_ms"] == {
        "count": 100,
        "p50": 1.0,
        "p95": 2.0,
        "p99": 3.0,
        "max": 4.0,
    }


@settings(max_examples=100, deadline=None)
@given(times=st.lists(st.sampled_from([0.5, 1.25, 2, 3.5, 40.0]), min_size=1, max_size=60))
def test_percentiles_equal_the_nearest_rank_of_the_sorted_times(times: list[float]) -> None:
    ordered = sorted(times)
    expected = {
        f"p{p}": ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
        for p in logs_report.PERCENTILES
    }
    got = report_of([accepted("orders/create", ms) for ms in times])["acknowledgement_ms"]
    assert got == {"count": len(times), **expected, "max": ordered[-1]}


@settings(max_examples=100, deadline=None)
@given(lines=st.lists(report_lines, max_size=30), cut=st.integers(0, 30))
def test_merging_the_reports_of_two_parts_equals_reading_the_whole(
    lines: list[bytes], cut: int
) -> None:
    """What `read` does with the reports of its worker processes, block after block."""
    first, second = (b"".join(text + b"\n" for text in part) for part in (lines[:cut], lines[cut:]))
    merged = logs_report.read(io.BytesIO(first), SINCE)
    merged.merge(logs_report.read(io.BytesIO(second), SINCE))
    whole = logs_report.read(io.BytesIO(first + second), SINCE)
    assert logs_report.to_json(merged) == logs_report.to_json(whole)


def test_worker_processes_count_what_one_process_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks past PARALLEL_AFTER go to two processes; samples stay the earliest lines'."""
    monkeypatch.setattr(log_scan, "BLOCK_SIZE", 4096)
    monkeypatch.setattr(logs_report, "PARALLEL_AFTER", 2)
    first_429 = line(
        "admin_api_call",
        "warning",
        operation="firstOperation",
        outcome="http_429",
        error_class="http_429",
        shop="c.myshopify.com",
    )
    filler = [accepted("orders/create", 3.0)] * 2000  # blocks before the first failure
    lines = filler + [first_429] + week() * 20
    data = b"\n".join(lines) + b"\n"
    assert len(filler) * len(filler[0]) > 10 * 4096  # the first 429 is read by a process
    alone = logs_report.to_json(logs_report.read(io.BytesIO(data), SINCE, jobs=1))
    in_processes = logs_report._read_in_processes
    jobs_used: list[int] = []

    def spy(*args: object) -> None:
        jobs_used.append(args[-1])  # type: ignore[arg-type]
        in_processes(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(logs_report, "_read_in_processes", spy)
    shared = logs_report.to_json(logs_report.read(io.BytesIO(data), SINCE, jobs=2))
    assert jobs_used == [2]
    assert shared == alone
    assert shared == reference_report(data, SINCE)
    samples = {e["error_class"]: e["sample"] for e in shared["errors"]}  # type: ignore[attr-defined]
    assert samples["http_429"]["operation"] == "firstOperation"  # not week()'s later ones
    assert shared["webhooks"]["orders/create"]["received"] == 2000 + 106 * 20  # type: ignore[index]


def test_a_big_file_is_read_in_segments_cut_at_line_ends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Segments start mid-line in the file; each line is still counted once, in one segment."""
    monkeypatch.setattr(log_scan, "BLOCK_SIZE", 4096)
    monkeypatch.setattr(logs_report, "PARALLEL_AFTER", 2)
    monkeypatch.setattr(logs_report, "SEGMENT_SIZE", 5000)  # not a multiple of any line
    lines = [accepted("orders/create", 3.0)] * 300 + week() * 10
    data = b"\n".join(lines)  # no newline after the last line
    path = tmp_path / "week.log"
    path.write_bytes(data)
    with path.open("rb") as stream:
        starts = logs_report._segment_starts(stream, len(data))
    assert len(starts) > 10
    assert all(data[start - 1] == ord("\n") for start in starts[1:])
    shared = logs_report.to_json(logs_report.read_path(path, SINCE, jobs=2))
    assert shared == reference_report(data, SINCE)
    assert shared == logs_report.to_json(logs_report.read_path(path, SINCE, jobs=1))
