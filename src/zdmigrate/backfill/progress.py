"""Backfill progress as data: events with rows done, rows/s and ETA, for any observer.

`ProgressMeter` turns the counts each batch commits (over every worker, in every
process) into `BackfillEvent`s and hands each to its `Reporter`: any callable
taking one (``run_backfill(..., reporter=events.append)``). The total is the
planner's estimate, raised to the rows done when the estimate was low.

Drawing the events (a progress bar, log lines, JSON lines) is `zdmigrate.output.progress`'s.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

#: kinds: start, progress, paused, resumed, throttled, unthrottled, lock-timeout,
#: range-lost, workers (the running worker count changed, and why), vacuum, done, stopped
EVENT_KINDS = (
    "start", "progress", "paused", "resumed", "throttled", "unthrottled", "lock-timeout",
    "range-lost", "workers", "vacuum", "done", "stopped",
)


class RowsProgress:
    """Rows done of rows to do, a rate and an ETA: what a progress event carries."""

    rows_done: int
    rows_total: int | None
    rows_per_second: float | None
    eta_seconds: float | None

    @property
    def percent(self) -> float | None:
        if not self.rows_total:
            return None
        return min(100.0, 100.0 * self.rows_done / self.rows_total)

    def rounded(self, data: dict[str, Any]) -> dict[str, Any]:
        """`data` (the event as a dict) with the percentage, and rate and ETA rounded."""
        data["percent"] = None if self.percent is None else round(self.percent, 2)
        if self.rows_per_second is not None:
            data["rows_per_second"] = round(self.rows_per_second, 1)
        if self.eta_seconds is not None:
            data["eta_seconds"] = round(self.eta_seconds, 1)
        return data


@dataclass(frozen=True)
class BackfillEvent(RowsProgress):
    kind: str
    migration_id: str
    table: str
    rows_done: int
    rows_total: int | None
    rows_updated: int
    rows_per_second: float | None
    eta_seconds: float | None
    batch_size: int | None = None
    workers: int = 1
    message: str | None = None
    #: The total is the planner's estimate (statistics were fresh), not a count.
    total_is_estimate: bool = False
    #: The estimated final verification scan, included in `eta_seconds`.
    verify_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["event"] = data.pop("kind")
        return self.rounded(data)


#: The observer of a backfill's progress: called with each event, from the workers' threads.
Reporter = Callable[[BackfillEvent], None]


class ProgressMeter:
    """Thread-safe: workers call `batch` and `note`; the reporter sees events.

    The rate is exponentially weighted over samples at least `SAMPLE` seconds
    apart (the early rate of a backfill is higher than its steady one, so the
    recent one counts most); the ETA adds `verify_seconds`, the estimated final
    verification scan. `tick` emits a progress event every `interval` seconds
    whether or not a batch committed.
    """

    WINDOW = 10.0  # seconds of history for the rows/s rate before the first sample
    SAMPLE = 1.0  # seconds between samples of the weighted rate
    ALPHA = 0.3  # weight of the newest sample

    def __init__(
        self, reporter: Reporter | None, *, migration_id: str, table: str, workers: int,
        rows_done: int, rows_updated: int, rows_total: int | None,
        total_is_estimate: bool = False,
    ) -> None:
        self.reporter = reporter
        self.total_is_estimate = total_is_estimate
        self.migration_id = migration_id
        self.table = table
        self.workers = workers
        self.rows_done = rows_done
        self.rows_updated = rows_updated
        self.rows_total = rows_total
        self.batch_size: int | None = None
        self.batches = 0
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, int]] = deque([(time.monotonic(), rows_done)])
        self._states: set[str] = set()
        self._ewma: float | None = None
        self._sampled = (time.monotonic(), rows_done)
        self._emitted = time.monotonic()
        self.verify_seconds: float | None = None
        self.interval = 1.0

    def _weigh(self, now: float) -> None:
        t0, r0 = self._sampled
        if now - t0 < self.SAMPLE:
            return
        sample = (self.rows_done - r0) / (now - t0)
        self._ewma = sample if self._ewma is None else (
            self.ALPHA * sample + (1 - self.ALPHA) * self._ewma
        )
        self._sampled = (now, self.rows_done)

    def rate(self) -> float | None:
        now = time.monotonic()
        self._weigh(now)
        if self._ewma is not None:
            return self._ewma
        while len(self._samples) > 2 and now - self._samples[1][0] > self.WINDOW:
            self._samples.popleft()
        (t0, r0), (t1, r1) = self._samples[0], self._samples[-1]
        if t1 - t0 <= 0:
            return None
        return (r1 - r0) / (t1 - t0)

    def _event(self, kind: str, message: str | None = None) -> BackfillEvent:
        rate = self.rate()
        total = self.rows_total
        if total is not None and total < self.rows_done:
            total = self.rows_done
        eta = None
        # a paused or throttled run has no ETA: it is not moving
        if kind == "progress" and total is not None and rate and rate > 0:
            eta = max(0.0, (total - self.rows_done) / rate) + (self.verify_seconds or 0.0)
        self._emitted = time.monotonic()
        return BackfillEvent(
            kind, self.migration_id, self.table, self.rows_done, total, self.rows_updated,
            rate, eta, self.batch_size, self.workers, message, self.total_is_estimate,
            None if self.verify_seconds is None else round(self.verify_seconds, 3),
        )

    def note(self, kind: str, message: str | None = None, *, state: str | None = None) -> None:
        """Emit an event; with `state`, only when that state changes (pause once, not per worker)."""
        with self._lock:
            if state is not None:
                entering = not kind.startswith(("resumed", "unthrottled"))
                if entering == (state in self._states):
                    return
                (self._states.add if entering else self._states.discard)(state)
            event = self._event(kind, message)
        if self.reporter is not None:
            self.reporter(event)

    def tick(self) -> None:
        """A progress event if none went out for `interval` seconds (call it often)."""
        with self._lock:
            if time.monotonic() - self._emitted < self.interval:
                return
            event = self._event("progress")
        if self.reporter is not None:
            self.reporter(event)

    def batch(
        self, rows_done: int, rows_updated: int, rows_total: int | None, batch_size: int
    ) -> None:
        with self._lock:
            self.batches += 1
            # commits of several workers may arrive out of order: keep the largest
            self.rows_done = max(self.rows_done, rows_done)
            self.rows_updated = max(self.rows_updated, rows_updated)
            if rows_total is not None:
                self.rows_total = rows_total
            self.batch_size = batch_size
            self._samples.append((time.monotonic(), self.rows_done))
            event = self._event("progress")
        if self.reporter is not None:
            self.reporter(event)

    def finish(self, kind: str, rows_done: int, rows_updated: int, message: str | None) -> None:
        with self._lock:
            self.rows_done = rows_done
            self.rows_updated = rows_updated
            if kind == "done":
                self.rows_total = rows_done
            event = self._event(kind, message)
        if self.reporter is not None:
            self.reporter(event)
