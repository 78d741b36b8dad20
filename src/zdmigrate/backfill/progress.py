"""Backfill progress: events with rows done, rows/s and ETA, and three ways to show them.

`ProgressMeter` turns the counts each batch commits (over every worker, in every
process) into `BackfillEvent`s; a reporter is any callable taking one. The total
is the planner's estimate, raised to the rows done when the estimate was low.

- `RichReporter`: a live progress bar (for a terminal);
- `PlainReporter`: a log line every few seconds (for logs and CI);
- `JsonReporter`: one JSON object per line (``--format json``).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, TextIO

#: kinds: start, progress, paused, resumed, throttled, unthrottled, lock-timeout,
#: range-lost, workers (the running worker count changed, and why), vacuum, done, stopped
EVENT_KINDS = (
    "start", "progress", "paused", "resumed", "throttled", "unthrottled", "lock-timeout",
    "range-lost", "workers", "vacuum", "done", "stopped",
)


@dataclass(frozen=True)
class BackfillEvent:
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

    @property
    def percent(self) -> float | None:
        if not self.rows_total:
            return None
        return min(100.0, 100.0 * self.rows_done / self.rows_total)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["event"] = data.pop("kind")
        data["percent"] = None if self.percent is None else round(self.percent, 2)
        if self.rows_per_second is not None:
            data["rows_per_second"] = round(self.rows_per_second, 1)
        if self.eta_seconds is not None:
            data["eta_seconds"] = round(self.eta_seconds, 1)
        return data


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


def _total(event: BackfillEvent) -> str:
    """``/200,000``, or ``/~200,000 (estimate)`` when the planner guessed it."""
    if not event.rows_total:
        return ""
    return (f"/~{event.rows_total:,}" if event.total_is_estimate else f"/{event.rows_total:,}")


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def describe(event: BackfillEvent) -> str:
    """One human line for an event."""
    total = _total(event)
    pct = f" ({event.percent:.0f}%)" if event.percent is not None else ""
    rate = f", {event.rows_per_second:,.0f} rows/s" if event.rows_per_second else ""
    eta = f", ETA {_eta(event.eta_seconds)}" if event.kind == "progress" else ""
    head = f"backfill {event.migration_id} {event.table}: "
    counts = f"{event.rows_done:,}{total} rows{pct}{rate}{eta}"
    if event.kind == "progress":
        return head + counts
    if event.kind == "done":
        return head + f"done, {event.rows_done:,} rows covered, {event.rows_updated:,} updated"
    return head + f"{event.kind}" + (f": {event.message}" if event.message else "") + f" [{counts}]"


class _ContextReporter:
    def __enter__(self) -> _ContextReporter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        return None


class PlainReporter(_ContextReporter):
    """Log lines: every event but progress at once, progress every `interval` seconds.

    Lines go to `stream`, or to `write` when given (e.g. the engine's log).
    """

    def __init__(
        self, stream: TextIO | None = None, interval: float = 5.0,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.write = write
        self._last = float("-inf")
        self._lock = threading.Lock()

    def __call__(self, event: BackfillEvent) -> None:
        with self._lock:
            now = time.monotonic()
            if event.kind == "progress":
                if now - self._last < self.interval:
                    return
                self._last = now
            if self.write is not None:
                self.write(describe(event))
            else:
                print(describe(event), file=self.stream, flush=True)


class JsonReporter(PlainReporter):
    """One JSON object per line; progress records at most every `interval` seconds."""

    def __init__(self, stream: TextIO | None = None, interval: float = 1.0) -> None:
        super().__init__(stream or sys.stdout, interval)

    def __call__(self, event: BackfillEvent) -> None:
        with self._lock:
            now = time.monotonic()
            if event.kind == "progress":
                if now - self._last < self.interval:
                    return
                self._last = now
            print(json.dumps(event.as_dict()), file=self.stream, flush=True)


class RichReporter(_ContextReporter):
    """A rich progress bar: rows done of the estimated total, rows/s and ETA."""

    def __init__(self, console: Any = None) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA {task.fields[eta]}"),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.progress.start()

    def __call__(self, event: BackfillEvent) -> None:
        with self._lock:
            name = f"{event.migration_id} {event.table}"
            task = self._tasks.get(name)
            if task is None:
                task = self.progress.add_task(
                    name, total=event.rows_total, counts="", rate="", eta="?"
                )
                self._tasks[name] = task
            total = _total(event)
            rate = f"{event.rows_per_second:,.0f} rows/s" if event.rows_per_second else ""
            if event.kind not in ("progress", "start", "done"):
                rate = f"{event.kind}" + (f": {event.message}" if event.message else "")
            self.progress.update(
                task, completed=event.rows_done, total=event.rows_total,
                counts=f"{event.rows_done:,}{total} rows", rate=rate,
                eta=(_eta(0) if event.kind == "done" else event.kind if event.kind == "paused"
                     else _eta(event.eta_seconds)),
            )

    def close(self) -> None:
        self.progress.stop()


def choose_reporter(output_format: str, stream: TextIO | None = None) -> _ContextReporter:
    """JSON lines for ``json``; a progress bar on a terminal; plain lines otherwise."""
    stream = stream or sys.stderr
    if output_format == "json":
        return JsonReporter()
    if stream.isatty():
        from rich.console import Console

        return RichReporter(Console(file=stream))
    return PlainReporter(stream)
