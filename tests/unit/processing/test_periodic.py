"""The worker's periodic jobs: due at once, then every interval; a failure never escapes."""

from __future__ import annotations

from timedify.processing.periodic import PeriodicJob, Schedule


def test_jobs_run_at_once_then_each_interval_and_failures_are_contained() -> None:
    now = [100.0]
    ran: list[str] = []

    def broken() -> None:
        ran.append("broken")
        raise RuntimeError("boom")

    schedule = Schedule(
        [PeriodicJob("a", 60, lambda: ran.append("a")), PeriodicJob("b", 10, broken)],
        clock=lambda: now[0],
    )
    schedule.run_due()
    assert ran == ["a", "broken"]
    now[0] += 30
    schedule.run_due()
    assert ran == ["a", "broken", "broken"]
    now[0] += 31
    schedule.run_due()
    assert ran == ["a", "broken", "broken", "a", "broken"]
