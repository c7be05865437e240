"""UTCDateTime: the one-step conversions store and give back what SQLAlchemy's two steps did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

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


PG = postgresql.psycopg.dialect()
ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]
)
# Away from datetime's ends, where moving to UTC would leave its range.
AWARE = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=ZONES)


@given(AWARE)
def test_postgresql_binds_the_naive_utc_time_and_reads_it_back_aware(value: datetime) -> None:
    bind = UTCDateTime().dialect_impl(PG).bind_processor(PG)
    result = UTCDateTime().dialect_impl(PG).result_processor(PG, None)
    assert bind is not None
    assert result is not None
    stored = bind(value)
    assert stored == value.astimezone(UTC).replace(tzinfo=None)
    assert stored.tzinfo is None
    assert result(stored) == value
    assert result(stored).tzinfo is UTC
    assert UTCDateTime().process_bind_param(value, PG) == stored
    assert UTCDateTime().process_result_value(stored, PG) == value


def test_postgresql_refuses_naive_timestamps_and_passes_none() -> None:
    bind = UTCDateTime().dialect_impl(PG).bind_processor(PG)
    result = UTCDateTime().dialect_impl(PG).result_processor(PG, None)
    assert bind is not None
    assert result is not None
    assert bind(None) is None
    assert result(None) is None
    with pytest.raises(ValueError, match="naive"):
        bind(datetime(2024, 5, 1))
