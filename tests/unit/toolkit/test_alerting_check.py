"""O3: thresholds, Nagios states and the first output line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from timedify.cli.checks import parse_thresholds
from timedify.toolkit.alerting_check import Finding, Report, State, Threshold, parse_window, worst


def test_threshold_states() -> None:
    limit = Threshold(1, 5)
    assert [limit.state(v) for v in (0, 1, 4, 5, 50)] == [
        State.OK,
        State.WARNING,
        State.WARNING,
        State.CRITICAL,
        State.CRITICAL,
    ]


def test_worst_state_ranks_problems_over_unknown() -> None:
    assert worst([]) == State.OK
    assert worst([State.OK, State.UNKNOWN]) == State.UNKNOWN
    assert worst([State.UNKNOWN, State.WARNING]) == State.WARNING
    assert worst([State.WARNING, State.CRITICAL, State.UNKNOWN]) == State.CRITICAL


def test_summary_line_has_state_problems_and_perfdata() -> None:
    report = Report(
        findings=[
            Finding("db_errors", State.CRITICAL, "7 database errors", 7, Threshold(1, 5)),
            Finding("http_429", State.OK, "0 HTTP 429 responses", 0, Threshold(10, 100)),
            Finding("backlog_age", State.OK, "0 s", 12.5, Threshold(300, 3600), "s"),
        ]
    )
    assert report.summary() == (
        "TIMEDIFY CRITICAL - db_errors: 7 database errors | "
        "db_errors=7;1;5;0 http_429=0;10;100;0 backlog_age=12.5s;300;3600;0"
    )
    assert report.to_json()["exit_code"] == 2
    assert Report(window="24h").summary() == "TIMEDIFY OK - no problems (window 24h)"


def test_parse_window() -> None:
    assert parse_window("24h") == timedelta(hours=24)
    assert parse_window("90m") == timedelta(minutes=90)
    assert parse_window("7d") == timedelta(days=7)
    assert parse_window("30") == timedelta(seconds=30)
    with pytest.raises(ValueError, match="not a duration"):
        parse_window("yesterday")


def test_parse_thresholds() -> None:
    limits = parse_thresholds(["db_errors=2:3", "compliance_days=10:1"])
    assert limits.db_errors == Threshold(2, 3)
    assert (limits.compliance_warn_days, limits.compliance_crit_days) == (10, 1)
    with pytest.raises(ValueError, match="unknown threshold"):
        parse_thresholds(["nope=1:2"])
    with pytest.raises(ValueError, match="NAME=WARN:CRIT"):
        parse_thresholds(["db_errors=1"])
