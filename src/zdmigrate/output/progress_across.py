"""Drawing a backfill over many targets: one bar, plain lines, or JSON lines.

The events come from `zdmigrate.backfill.across` (`TargetsProgress`):

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
from typing import Any, TextIO

from zdmigrate.backfill.across import SHOWN_KINDS, TargetEvent, TotalEvent
from zdmigrate.output.progress import Closing, _eta, describe, rows_bar


def describe_total(event: TotalEvent) -> str:
    """The whole set's progress as one line."""
    total = f"/{event.rows_total:,}" if event.rows_total else ""
    pct = f" ({event.percent:.0f}%)" if event.percent is not None else ""
    rate = f", {event.rows_per_second:,.0f} rows/s" if event.rows_per_second else ""
    failed = f", {event.targets_failed} failed" if event.targets_failed else ""
    return (f"backfill {event.migration_id} on {event.targets_total} targets: "
            f"{event.rows_done:,}{total} rows{pct}{rate}, ETA {_eta(event.eta_seconds)}; "
            f"{event.targets_done} of {event.targets_total} done{failed}")


def describe_target(event: TargetEvent) -> str:
    """One target's event as a line starting with ``[name]``."""
    return f"[{event.target}] {describe(event.event)}"


def _line(event: TargetEvent | TotalEvent) -> str:
    return describe_target(event) if isinstance(event, TargetEvent) else describe_total(event)


class _TargetsReporter(Closing):
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
                line = _line(event)
            else:
                now = time.monotonic()
                if now - self._last < self.interval and event.targets_running:
                    return
                self._last = now
                line = _line(event)
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
        self.progress = rows_bar(console, "targets")
        self._task: Any = None
        self._lock = threading.Lock()
        self.progress.start()

    def __call__(self, event: TargetEvent | TotalEvent) -> None:
        with self._lock:
            if isinstance(event, TargetEvent):
                if event.event.kind in SHOWN_KINDS:
                    self.progress.console.print(_line(event), highlight=False)
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


