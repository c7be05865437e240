"""Time-sliced batches: sizes follow the measured speed, pauses follow the work."""

from __future__ import annotations

import pytest

from timedify.toolkit.pacing import MIN_ROWS, Pacer


def pacer(**kwargs: object) -> tuple[Pacer, list[float]]:
    slept: list[float] = []
    options: dict[str, object] = {"target": 0.005, "duty": 0.5, "max_rows": 10_000, **kwargs}
    return Pacer(sleep=slept.append, **options), slept  # type: ignore[arg-type]


def test_a_fast_batch_grows_the_next_one_at_most_twofold() -> None:
    p, _ = pacer(rows=1000)
    p.finished(1000, held=0.0001)
    assert p.rows == 2000
    p.finished(2000, held=0.004)
    assert p.rows == 2500


def test_a_slow_batch_shrinks_the_next_one_down_to_the_floor() -> None:
    p, _ = pacer(rows=1000)
    p.finished(1000, held=0.010)
    assert p.rows == 500
    for _ in range(10):
        p.finished(p.rows, held=1.0)
    assert p.rows == MIN_ROWS


def test_sizes_never_pass_the_cap() -> None:
    p, _ = pacer(rows=50, max_rows=7)
    assert p.rows == 7
    p.finished(7, held=0.000001)
    assert p.rows == 7


def test_a_short_batch_says_nothing_about_speed() -> None:
    """The last batch of a rule finds fewer rows than asked: the size stays."""
    p, _ = pacer(rows=1000)
    p.finished(10, held=0.0001)
    assert p.rows == 1000


@pytest.mark.parametrize(("duty", "pause"), [(0.5, 0.006), (0.25, 0.018), (1.0, 0.0)])
def test_the_pause_leaves_the_rest_of_the_time_to_others(duty: float, pause: float) -> None:
    """Work (the batch and any checkpoint after it) is `duty` of the wall clock."""
    p, slept = pacer(duty=duty)
    p.finished(p.rows, held=0.004, other_work=0.002)
    assert sum(slept) == pytest.approx(pause)


def test_duty_must_be_a_share() -> None:
    with pytest.raises(ValueError, match="duty"):
        pacer(duty=0.0)
