"""Time-sliced batches: bulk work that shares a database with a latency-sensitive writer.

On SQLite one writer holds the write lock at a time; the ingest group committer must get it
within milliseconds or webhook acknowledgements queue up. A `Pacer` sizes each batch so one
transaction holds the lock for about `target` seconds (rows per batch follow the measured
speed, so a slow disk or a busy machine means smaller batches, not longer holds), and sleeps
after each batch in proportion to the work just done, so the bulk job uses at most `duty` of
the wall clock and the service keeps the rest of the lock and of the CPUs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

# The smallest batch: below it the fixed cost of a transaction (a PostgreSQL commit's fsync)
# dominates and shrinking further would only slow the job down without shortening any hold.
MIN_ROWS = 50
# One batch may grow or shrink by at most this factor: one odd measurement (a page-cache miss,
# a descheduled process) must not swing the size.
_MAX_STEP = 2.0


@dataclass
class Pacer:
    """Batch sizes and pauses for one bulk job (see the module docstring)."""

    target: float
    duty: float
    max_rows: int
    rows: int = MIN_ROWS
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.duty <= 1:
            raise ValueError("duty must be in (0, 1]")
        self.rows = max(1, min(self.rows, self.max_rows))

    def finished(self, rows: int, held: float, other_work: float = 0.0) -> None:
        """A batch of `rows` held the lock `held` seconds; more work took `other_work` seconds.

        Adapts the next batch's size (after full batches only: a short one says nothing about
        speed) and pauses long enough that the work is `duty` of the time.
        """
        if rows >= self.rows and held > 0:
            step = min(max(self.target / held, 1 / _MAX_STEP), _MAX_STEP)
            self.rows = min(max(int(self.rows * step), MIN_ROWS), self.max_rows)
        pause = (held + other_work) * (1 - self.duty) / self.duty
        if pause > 0:
            self.sleep(pause)
