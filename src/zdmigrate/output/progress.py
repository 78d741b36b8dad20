"""Drawing backfill progress: a rich progress bar, plain log lines, JSON lines.

Each reporter is a `zdmigrate.backfill.Reporter` (a callable taking a
`BackfillEvent`); the CLI picks one and hands it to the command:

    with choose_reporter("text") as reporter:
        engine.backfill(settings, "0003_email_lower", reporter=reporter)

- `RichReporter`: a live progress bar (for a terminal);
- `PlainReporter`: a log line every few seconds (for logs and CI);
- `JsonReporter`: one JSON object per line (``--format json``).

Reporters are called from the workers' threads; each one locks what it draws.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TextIO

from zdmigrate.backfill.progress import BackfillEvent


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


class Closing:
    """Something that may hold a display open: use it with ``with``; `close` ends it."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        return None


class _ContextReporter(Closing):
    """A reporter that may hold something open (a live display): use it with ``with``."""

    def __call__(self, event: BackfillEvent) -> None:
        raise NotImplementedError


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
            self._draw(event)

    def _draw(self, event: BackfillEvent) -> None:
        if self.write is not None:
            self.write(describe(event))
        else:
            print(describe(event), file=self.stream, flush=True)


class JsonReporter(PlainReporter):
    """One JSON object per line; progress records at most every `interval` seconds."""

    def __init__(self, stream: TextIO | None = None, interval: float = 1.0) -> None:
        super().__init__(stream or sys.stdout, interval)

    def _draw(self, event: BackfillEvent) -> None:
        print(json.dumps(event.as_dict()), file=self.stream, flush=True)


def rows_bar(console: Any = None, *fields: str) -> Any:
    """A rich `Progress` of rows: description, bar, counts, rate, ETA, then `fields`."""
    from rich.progress import BarColumn, Progress, TextColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("ETA {task.fields[eta]}"),
        *(TextColumn(f"{{task.fields[{field}]}}") for field in fields),
        console=console,
        transient=False,
    )


class RichReporter(_ContextReporter):
    """A rich progress bar: rows done of the estimated total, rows/s and ETA."""

    def __init__(self, console: Any = None) -> None:
        self.progress = rows_bar(console)
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
