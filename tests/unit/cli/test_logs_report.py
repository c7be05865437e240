"""`logs-report` when its worker processes cannot start or die: the report or one line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import crash
from timedify.cli import logs_report as command
from timedify.toolkit import log_scan, logs_report

SINCE = datetime(2026, 11, 21, tzinfo=UTC)


def big_log(path: Path) -> Path:
    line = orjson.dumps(
        {
            "event": "webhook_accepted",
            "level": "info",
            "time": "2026-11-27T10:00:00.000000Z",
            "topic": "orders/create",
            "duration_ms": 2.5,
        }
    )
    path.write_bytes(b"\n".join([line] * 2000) + b"\n")
    return path


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_scan, "BLOCK_SIZE", 4096)
    monkeypatch.setattr(logs_report, "PARALLEL_AFTER", 2)
    monkeypatch.setattr(logs_report, "SEGMENT_SIZE", 8192)


@pytest.mark.usefixtures("small_blocks")
def test_without_worker_processes_the_log_is_read_in_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Where processes get no locks (no /dev/shm), the same report comes from this process."""

    def no_processes(*_args: Any) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(logs_report, "get_context", no_processes)
    path = big_log(tmp_path / "week.log")
    by_path = logs_report.to_json(logs_report.read_path(path, SINCE, jobs=2))
    with path.open("rb") as stream:
        by_stream = logs_report.to_json(logs_report.read(stream, SINCE, jobs=2))
    assert by_path["webhooks"] == {  # type: ignore[comparison-overlap]
        "orders/create": {"received": 2000, "accepted": 2000, "duplicate": 0, "rejected": 0}
    }
    assert by_stream == by_path
    assert by_path["bytes"] == path.stat().st_size


@pytest.mark.usefixtures("small_blocks")
def test_a_worker_process_that_dies_is_one_line_saying_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(logs_report, "read_segment", crash.exit_process)
    path = big_log(tmp_path / "week.log")
    with pytest.raises(command.LogsReportError) as info:
        command._read(str(path), SINCE, 2)
    assert str(info.value) == (
        "a process reading the log stopped (out of memory?): run again with --jobs 1"
    )
