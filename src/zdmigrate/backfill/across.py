"""One backfill over many targets (shards, tenant databases): one total, three ways to show it.

Each target's backfill runs as it does alone and reports its own `BackfillEvent`s;
`TargetsProgress` hands each target a reporter that tags the events with the
target's name and adds them up: rows done and rows to do over all targets (the
rows of a target not started yet are the planner's estimate, `planned`), the
rate over all of them, and the ETA of what is left on the targets still going.

Drawing them (one progress bar on a terminal, ``[name]`` lines, JSON lines) is
`zdmigrate.output.progress_across`'s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from zdmigrate.backfill.keys import estimated_rows, resolve_table
from zdmigrate.backfill.progress import BackfillEvent, Reporter, RowsProgress
from zdmigrate.state import Store
from zdmigrate.steps import BackfillStep


@dataclass(frozen=True)
class TotalEvent(RowsProgress):
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

    def as_dict(self) -> dict[str, Any]:
        return self.rounded({"event": "total", **asdict(self)})


@dataclass(frozen=True)
class TargetEvent:
    """One target's own backfill event."""

    target: str
    event: BackfillEvent

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, **self.event.as_dict()}


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


def planned_rows(
    conn: psycopg.Connection[Any], state_schema: str, migration_id: str,
    steps: Sequence[BackfillStep],
) -> dict[str, tuple[int, int | None]]:
    """Per table of `steps` (as its events name it): (rows done, rows to do), before it runs.

    A backfill already started counts from its stored progress; one not started
    from the planner's estimate (cheap: no count). Reads only.
    """
    stored: dict[str, dict[str, Any]] = {}
    if Store(conn, state_schema).exists():
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
