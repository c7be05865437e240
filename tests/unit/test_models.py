"""UTCDateTime on SQLite: the one-step conversion stores what SQLAlchemy's two steps stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite

from timedify.models import UTCDateTime

DIALECT = sqlite.dialect()
VALUES = [
    datetime(2024, 5, 1, 12, 0, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2024, 5, 1, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2024, 5, 2, 1, 30, 0, 5, tzinfo=timezone(timedelta(hours=2))),  # not UTC
    datetime(999, 1, 1, tzinfo=UTC),
]


def _two_steps(value: datetime) -> str:
    naive = UTCDateTime().process_bind_param(value, DIALECT)
    process = sqlite.DATETIME().bind_processor(DIALECT)
    assert process is not None
    text: str = process(naive)
    return text


@pytest.mark.parametrize("value", VALUES)
def test_sqlite_text_is_sqlalchemys_text_of_the_utc_time(value: datetime) -> None:
    bind = UTCDateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
    result = UTCDateTime().dialect_impl(DIALECT).result_processor(DIALECT, None)
    assert bind is not None
    assert result is not None
    assert bind(value) == _two_steps(value)
    assert result(bind(value)) == value
    assert result(bind(value)).tzinfo is UTC


def test_naive_timestamps_and_none() -> None:
    bind = UTCDateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
    assert bind is not None
    assert bind(None) is None
    with pytest.raises(ValueError, match="naive"):
        bind(datetime(2024, 5, 1))  # a naive timestamp
