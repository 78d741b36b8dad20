"""Batch size that adapts to a target batch duration, within bounds.

After each full batch the size is scaled by target/actual, at most doubling or
halving at a time, so a sudden slowdown (a busy table, a cold cache) shrinks the
next batch quickly and row locks are never held much longer than the target.
A lock timeout or statement timeout halves it at once.
"""

from __future__ import annotations


class BatchSizer:
    def __init__(self, initial: int, minimum: int, maximum: int, target_seconds: float) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.target = target_seconds
        self.size = max(minimum, min(maximum, initial))

    def observe(self, rows: int, seconds: float) -> int:
        """Adjust after a batch of `rows` rows that took `seconds`; returns the new size."""
        if rows < self.size // 2:
            return self.size  # a short tail batch says nothing about speed
        per_row = max(seconds, 1e-4) / max(rows, 1)
        wanted = self.target / per_row
        wanted = max(self.size / 2, min(self.size * 2, wanted))
        self.size = int(max(self.minimum, min(self.maximum, wanted)))
        return self.size

    def shrink(self) -> int:
        self.size = max(self.minimum, self.size // 2)
        return self.size
