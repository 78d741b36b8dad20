"""One backfill over many targets (shards, tenant databases): one total, three ways to show it.

Each target's backfill runs as it does alone and reports its own `BackfillEvent`s;
`TargetsProgress` hands each target a reporter that tags the events with the
target's name and adds them up: rows done and rows to do over all targets (the
rows of a target not started yet are the planner's estimate, `planned`), the
rate over all of them, and the ETA of what is left on the targets still going.

- `RichTargetsReporter`: ONE progress bar for the whole set (for a terminal), and a
  line above it when a target finishes, fails or is paused;
- `PlainTargetsReporter`: each target's end (done, failed, stopped) and pauses as
  lines starting with ``[name]``, and the total every few seconds (for logs and CI);
- `JsonTargetsReporter`: one JSON object per line, each carrying its ``target``, and
  ``"event": "total"`` records (``--format json``).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TextIO

import psycopg

from zdmigrate.backfill.keys import estimated_rows, resolve_table
from zdmigrate.backfill.progress import (
    BackfillEvent,
    Reporter,
    _ContextReporter,
    _eta,
    describe,
)
from zdmigrate.state import Store, schema_exists
from zdmigrate.steps import BackfillStep


@dataclass(frozen=True)
class TotalEvent:
    """The backfill over every target at one moment."""

    migration_id: str
    rows_done: int
    rows_total: int | None
    rows_per_second: float | None
    eta_seconds: float | None
    targets_total: int
    targets_done: int
    targets_failed: int
    targets_running: int

    @property
    def percent(self) -> float | None:
        if not self.rows_total:
            return None
        return min(100.0, 100.0 * self.rows_done / self.rows_total)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data = {"event": "total", **data}
        data["percent"] = None if self.percent is None else round(self.percent, 2)
        if self.rows_per_second is not None:
            data["rows_per_second"] = round(self.rows_per_second, 1)
        if self.eta_seconds is not None:
            data["eta_seconds"] = round(self.eta_seconds, 1)
        return data

    def describe(self) -> str:
        total = f"/{self.rows_total:,}" if self.rows_total else ""
        pct = f" ({self.percent:.0f}%)" if self.percent is not None else ""
        rate = f", {self.rows_per_second:,.0f} rows/s" if self.rows_per_second else ""
        failed = f", {self.targets_failed} failed" if self.targets_failed else ""
        return (f"backfill {self.migration_id} on {self.targets_total} targets: "
                f"{self.rows_done:,}{total} rows{pct}{rate}, ETA {_eta(self.eta_seconds)}; "
                f"{self.targets_done} of {self.targets_total} done{failed}")


@dataclass(frozen=True)
class TargetEvent:
    """One target's own backfill event."""

    target: str
    event: BackfillEvent

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, **self.event.as_dict()}

    def describe(self) -> str:
        return f"[{self.target}] {describe(self.event)}"


#: What a reporter of the whole set is given.
TargetsReporter = Callable[[TargetEvent | TotalEvent], None]

#: The events of a target that people see as lines (plain) or above the bar (terminal):
#: a target's start, end and operator switches. The others (throttled, vacuum, lock
#: waits, ...) would be a flood over hundreds of targets: JSON carries them all.
SHOWN_KINDS = frozenset({"done", "stopped", "paused", "resumed", "failed"})


class TargetsProgress:
    """Adds up the events of every target's backfill; thread-safe (targets run in threads).

    `planned` holds, per (target, table), (rows done, rows to do) read before any
    target started (`planned_rows`), so the total is right from the first moment;
    a table's own events replace its planned numbers as they come. A table whose
    plan could not be read counts from its first event on.
    """

    SAMPLE = 1.0  # seconds between samples of the weighted rate
    ALPHA = 0.3  # weight of the newest sample

    def __init__(
        self, reporter: TargetsReporter | None, migration_id: str, targets: Sequence[str],
        planned: Mapping[tuple[str, str], tuple[int, int | None]] | None = None, *,
        interval: float = 1.0,
    ) -> None:
        self.reporter = reporter
        self.migration_id = migration_id
        self.targets = list(targets)
        self.interval = interval
        #: target -> table -> (rows done, rows to do): the plan, then each latest event
        self._rows_of: dict[str, dict[str, tuple[int, int | None]]] = {
            name: {} for name in self.targets}
        for (name, table), rows in (planned or {}).items():
            self._rows_of.setdefault(name, {})[table] = rows
        self._finished: dict[str, str] = {}  # target -> done or failed
        # the sums over every target, kept as events come (hundreds of targets)
        self._target_rows = {name: self._rows(name) for name in self._rows_of}
        self._done = sum(d for d, _ in self._target_rows.values())
        self._to_do = sum(t for _, t in self._target_rows.values())
        self._left = sum(max(0, t - d) for d, t in self._target_rows.values())
        self._lock = threading.Lock()
        self._sampled: tuple[float, int] | None = None
        self._rate: float | None = None
        self._emitted = float("-inf")

    def for_target(self, target: str) -> Reporter:
        """The reporter to give `target`'s backfill."""

        def report(event: BackfillEvent) -> None:
            with self._lock:
                self._rows_of.setdefault(target, {})[event.table] = (
                    event.rows_done, event.rows_total)
                self._recount(target)
            if self.reporter is not None:
                self.reporter(TargetEvent(target, event))
            self.tick(force=event.kind in SHOWN_KINDS or event.kind == "start")

        return report

    def finished(self, target: str, ok: bool, message: str | None = None) -> None:
        """`target` is over: its backfill finished (`ok`), or failed (why: `message`).

        A failure is reported as the target's own ``failed`` event: no event of its
        backfill says so (it stopped on an error).
        """
        with self._lock:
            if target not in self._finished:  # what is left on it is no longer awaited
                d, t = self._target_rows.get(target, (0, 0))
                self._left -= max(0, t - d)
            self._finished[target] = "done" if ok else "failed"
            seen = list(self._rows_of.get(target, {}).items())
        if not ok and self.reporter is not None:
            table, (done, total) = seen[0] if seen else ("", (0, None))
            self.reporter(TargetEvent(target, BackfillEvent(
                "failed", self.migration_id, table, done, total, done, None, None,
                message=message)))
        self.tick(force=True)

    def total(self) -> TotalEvent:
        with self._lock:
            return self._total(time.monotonic())

    def tick(self, *, force: bool = False) -> None:
        """A total event, at most every `interval` seconds unless `force`."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._emitted < self.interval:
                return
            self._emitted = now
            event = self._total(now)
        if self.reporter is not None:
            self.reporter(event)

    def _recount(self, target: str) -> None:
        """Update the sums after an event of `target` (call with the lock held)."""
        before_d, before_t = self._target_rows.get(target, (0, 0))
        d, t = self._target_rows[target] = self._rows(target)
        self._done += d - before_d
        self._to_do += t - before_t
        if target not in self._finished:
            self._left += max(0, t - d) - max(0, before_t - before_d)

    def _rows(self, target: str) -> tuple[int, int]:
        """Rows done and to do on `target`: each table's latest event, else its plan."""
        tables = self._rows_of.get(target, {})
        done = sum(d for d, _ in tables.values())
        total = sum(max(t, d) if t is not None else d for d, t in tables.values())
        return done, total

    def _total(self, now: float) -> TotalEvent:
        done, total, left = self._done, self._to_do, self._left
        if self._sampled is None:
            self._sampled = (now, done)
        t0, d0 = self._sampled
        if now - t0 >= self.SAMPLE:
            sample = (done - d0) / (now - t0)
            self._rate = sample if self._rate is None else (
                self.ALPHA * sample + (1 - self.ALPHA) * self._rate)
            self._sampled = (now, done)
        running = len(self.targets) - len(self._finished)
        eta = (left / self._rate if self._rate and self._rate > 0
               else (0.0 if running == 0 else None))
        return TotalEvent(
            self.migration_id, done, total or None, self._rate, eta, len(self.targets),
            sum(1 for v in self._finished.values() if v == "done"),
            sum(1 for v in self._finished.values() if v == "failed"), running,
        )


class _TargetsReporter(_ContextReporter):
    """A reporter of the whole set that is also a context manager (closes its display)."""

    def __call__(self, event: TargetEvent | TotalEvent) -> None:
        raise NotImplementedError


class PlainTargetsReporter(_TargetsReporter):
    """Lines: each target's end and pauses (`SHOWN_KINDS`) at once (``[shard-03] ...``),
    the total every `interval` seconds and whenever a target finishes."""

    def __init__(self, stream: TextIO | None = None, interval: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self._last = float("-inf")
        self._lock = threading.Lock()

    def __call__(self, event: TargetEvent | TotalEvent) -> None:
        with self._lock:
            if isinstance(event, TargetEvent):
                if event.event.kind not in SHOWN_KINDS:
                    return
                line = event.describe()
            else:
                now = time.monotonic()
                if now - self._last < self.interval and event.targets_running:
                    return
                self._last = now
                line = event.describe()
            print(line, file=self.stream, flush=True)


class JsonTargetsReporter(_TargetsReporter):
    """One JSON object per line: each target's events with ``target``, and ``total`` records.

    Progress records go out at most every `interval` seconds per target.
    """

    def __init__(self, stream: TextIO | None = None, interval: float = 1.0) -> None:
        self.stream = stream or sys.stdout
        self.interval = interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, event: TargetEvent | TotalEvent) -> None:
        with self._lock:
            now = time.monotonic()
            key = event.target if isinstance(event, TargetEvent) else "\0total"
            throttled = (event.event.kind == "progress" if isinstance(event, TargetEvent)
                         else bool(event.targets_running))
            if throttled:
                if now - self._last.get(key, float("-inf")) < self.interval:
                    return
                self._last[key] = now
            print(json.dumps(event.as_dict()), file=self.stream, flush=True)


class RichTargetsReporter(_TargetsReporter):
    """ONE rich progress bar over every target: rows done of all, rows/s, ETA, targets done.

    A target's end and pauses (`SHOWN_KINDS`) are printed above the bar.
    """

    def __init__(self, console: Any = None) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA {task.fields[eta]}"),
            TextColumn("{task.fields[targets]}"),
            console=console,
            transient=False,
        )
        self._task: Any = None
        self._lock = threading.Lock()
        self.progress.start()

    def __call__(self, event: TargetEvent | TotalEvent) -> None:
        with self._lock:
            if isinstance(event, TargetEvent):
                if event.event.kind in SHOWN_KINDS:
                    self.progress.console.print(event.describe(), highlight=False)
                return
            if self._task is None:
                self._task = self.progress.add_task(
                    f"backfill {event.migration_id}", total=event.rows_total, counts="",
                    rate="", eta="?", targets="")
            total = f"/{event.rows_total:,}" if event.rows_total else ""
            failed = f", {event.targets_failed} failed" if event.targets_failed else ""
            self.progress.update(
                self._task, completed=event.rows_done, total=event.rows_total,
                counts=f"{event.rows_done:,}{total} rows",
                rate=f"{event.rows_per_second:,.0f} rows/s" if event.rows_per_second else "",
                eta=_eta(event.eta_seconds),
                targets=f"{event.targets_done}/{event.targets_total} targets done{failed}",
            )

    def close(self) -> None:
        self.progress.stop()


def choose_targets_reporter(
    output_format: str, stream: TextIO | None = None
) -> _TargetsReporter:
    """JSON lines for ``json``; one progress bar on a terminal; plain lines otherwise."""
    stream = stream or sys.stderr
    if output_format == "json":
        return JsonTargetsReporter()
    if stream.isatty():
        from rich.console import Console

        return RichTargetsReporter(Console(file=stream))
    return PlainTargetsReporter(stream)


def planned_rows(
    conn: psycopg.Connection[Any], state_schema: str, migration_id: str,
    steps: Sequence[BackfillStep],
) -> dict[str, tuple[int, int | None]]:
    """Per table of `steps` (as its events name it): (rows done, rows to do), before it runs.

    A backfill already started counts from its stored progress; one not started
    from the planner's estimate (cheap: no count). Reads only.
    """
    stored: dict[str, dict[str, Any]] = {}
    if schema_exists(conn, state_schema):
        stored = {row["step_key"]: row
                  for row in Store(conn, state_schema).backfills.progress([migration_id])}
    out: dict[str, tuple[int, int | None]] = {}
    for step in steps:
        table = resolve_table(conn, step)
        row = stored.get(step.key)
        if row is None:
            out[str(table)] = (0, estimated_rows(conn, table))
            continue
        done = int(row.get("rows_done") or 0)
        total = row.get("rows_total")
        out[str(table)] = (done, done if row.get("status") == "done" else total)
    return out
