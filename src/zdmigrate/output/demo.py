"""Drawing the demo: a rich live view on a terminal, plain lines elsewhere; its summary.

The demo supplies the data (`zdmigrate.demo`'s `DemoProgress`: events, phases,
backfills, the fleet, the app's name and each version's role; and its
`TrafficStats`); these views only read it and never talk to the database.
The live view redraws four times a second; the plain view prints each event as
it happens and a traffic line every few seconds (for CI logs and pipes).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table

from zdmigrate.phases import Phase

if TYPE_CHECKING:  # the data the demo hands in; output/ sits below the demo
    from zdmigrate.demo.progress import DemoProgress, Event
    from zdmigrate.demo.summary import DemoSummary
    from zdmigrate.demo.traffic import TrafficStats

_PHASE_STYLE = {
    Phase.PENDING: "dim", Phase.EXPAND: "cyan", Phase.DUAL_WRITE: "cyan",
    Phase.BACKFILL: "yellow", Phase.SWITCH_READ: "magenta", Phase.CONTRACT: "green",
}
_EVENT_STYLE = {"stage": "bold", "refused": "red", "gate": "green", "deploy": "blue",
                "phase": "", "backfill": "yellow", "info": "dim"}


def traffic_line(progress: DemoProgress, stats: TrafficStats) -> str:
    parts = []
    for version in stats.versions():
        t = stats.snapshot(version)
        parts.append(f"{progress.app} {version}: {t.requests:,} req, {t.failed:,} failed, "
                     f"p99 {t.p99_ms:.1f} ms, {t.rate:.0f}/s")
    return f"[{progress.elapsed():6.1f}s] traffic: " + " | ".join(parts)


@contextmanager
def plain_view(progress: DemoProgress, stats: TrafficStats, stream: TextIO,
               every: float = 5.0) -> Iterator[None]:
    """Print events as lines on `stream`, and a traffic line every `every` seconds."""

    def on_event(event: Event) -> None:
        stream.write(f"[{event.at:6.1f}s] {event.text}\n")
        stream.flush()

    stop = threading.Event()

    def ticker() -> None:
        while not stop.wait(every):
            if stats.versions():
                stream.write(traffic_line(progress, stats) + "\n")
                stream.flush()

    progress.listeners.append(on_event)
    thread = threading.Thread(target=ticker, name="demo traffic lines", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(2)
        progress.listeners.remove(on_event)


@contextmanager
def live_view(progress: DemoProgress, stats: TrafficStats, stream: TextIO) -> Iterator[None]:
    """A rich Live view on `stream` (a terminal), redrawn four times a second."""
    console = Console(file=stream)
    renderer = _LiveRenderer(progress, stats, console)
    with Live(get_renderable=renderer.render, console=console, refresh_per_second=4,
              screen=False, transient=False, redirect_stdout=False, redirect_stderr=False):
        yield


def summary_text(summary: DemoSummary) -> str:
    """The demo's result as text: traffic per version, then what the pipeline did."""
    lines = [
        f"zdmigrate demo ({summary.strategy}) on {summary.database}: "
        f"{summary.duration_seconds:.0f}s",
        "",
        f"  {'version':<26}{'requests':>10}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}",
    ]
    for v in [*summary.versions, summary.total]:
        label = (f"{summary.app} {v.version} ({summary.role(v.version)})"
                 if v.version != "all" else "all")
        lines.append(f"  {label:<26}{v.requests:>10,}{v.failed:>8,}{v.p50_ms:>9.1f}"
                     f"{v.p99_ms:>9.1f}{v.max_ms:>9.1f}")
    done = sum(1 for _, phase in summary.migrations if phase is Phase.CONTRACT)
    lines += [
        "",
        f"  migrations complete: {done} of {len(summary.migrations)} "
        f"({summary.record.transitions} phase transitions, {summary.record.deploy_steps} deploy "
        "steps)",
        "  releases:            "
        + " -> ".join(f"{summary.app} {v}" for v in summary.record.releases),
        f"  backfilled rows:     {summary.backfilled_rows:,} in {len(summary.backfills)} "
        "backfill(s)",
        f"  contract refused:    {len(summary.record.contract_refusals)} time(s) while an old "
        "version was live",
        "  gate answers:        " + ", ".join(
            f"{summary.app} {g.version} {'allowed' if g.answer.allowed else 'refused'}"
            for g in summary.record.gate_calls),
    ]
    for message, count in summary.total.errors:
        lines.append(f"  error ({count}x): {message}")
    lines += ["", "  zero downtime: " + ("yes, not one request failed" if summary.ok else
                                          "NO: see the failures above")]
    return "\n".join(lines)


class _LiveRenderer:
    #: Below this size the view is compact: short headers, migrations counted per phase,
    #: and the pipeline gets the lines that are left (never hidden).
    FULL_SIZE = (100, 40)

    def __init__(self, progress: DemoProgress, stats: TrafficStats,
                 console: Console | None = None) -> None:
        self.progress = progress
        self.stats = stats
        self.console = console

    def render(self) -> RenderableType:
        snap = self.progress.snapshot()
        if self.console is not None:
            width, height = self.console.size
            if width < self.FULL_SIZE[0] or height < self.FULL_SIZE[1]:
                return self._compact(snap, height)
        return Panel(
            Group(
                f"[bold]{snap['stage']}[/bold]",
                self._fleet(snap),
                self._migrations(snap),
                self._backfills(snap),
                self._events(),
            ),
            title=(f"zdmigrate demo · {self.progress.strategy} · {self.progress.database} · "
                   f"{self.progress.elapsed():.0f}s"),
            border_style="blue",
        )

    def _compact(self, snap: dict[str, object], height: int) -> RenderableType:
        running: dict[str, int] = snap["running"]  # type: ignore[assignment]
        shares: dict[str, float] = snap["shares"]  # type: ignore[assignment]
        seen: dict[str, int] = snap["seen"]  # type: ignore[assignment]
        fleet = Table(box=None, header_style="bold", pad_edge=False, expand=True)
        fleet.add_column(self.progress.app, no_wrap=True)
        for column in ("inst", "seen", "share", "requests", "failed", "p99 ms"):
            fleet.add_column(column, justify="right", no_wrap=True)
        versions = self._versions(running)
        for version in versions:
            t = self.stats.snapshot(version)
            fleet.add_row(
                version, str(running.get(version, 0)), str(seen.get(version, 0)),
                f"{100 * shares.get(version, 0.0):.0f}%" if running.get(version) else "-",
                f"{t.requests:,}", f"[red]{t.failed:,}[/red]" if t.failed else "0",
                f"{t.p99_ms:.1f}",
            )
        total = self.stats.total()
        fleet.add_row("all", "", "", "", f"{total.requests:,}",
                      f"[red]{total.failed:,}[/red]" if total.failed else "[green]0[/green]",
                      f"{total.p99_ms:.1f}", style="bold")
        phases: dict[str, Phase] = snap["phases"]  # type: ignore[assignment]
        counts = {p: 0 for p in Phase}
        for mid in self.progress.migrations:
            counts[phases.get(mid, Phase.PENDING)] += 1
        summary = "migrations: " + ", ".join(
            f"{n} {p}" for p, n in reversed(list(counts.items())) if n)
        backfills: list[dict[str, object]] = snap["backfills"]  # type: ignore[assignment]
        moving = [b for b in backfills if b.get("status") != "done"][:2]
        lines = [
            f"backfill {b['migration_id']} {b['table_name']}: "
            f"{int(b.get('rows_done') or 0):,}"  # type: ignore[call-overload]
            + (f"/{int(b['rows_total']):,}" if b.get("rows_total") else "")  # type: ignore[call-overload]
            + f" rows, {b.get('status')}"
            for b in moving
        ]
        # panel borders 2, stage 1, fleet header+rows+total, summary 1, backfills, title 1
        used = 2 + 1 + (len(versions) + 2) + 1 + len(lines) + 1
        events = Table(title="pipeline", title_justify="left", expand=True, show_header=False,
                       box=None, pad_edge=False)
        events.add_column(width=7, justify="right", no_wrap=True)
        events.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        for event in self.progress.recent_events(max(2, height - used)):
            style = _EVENT_STYLE.get(event.kind, "")
            text = event.text.replace("[", "\\[")
            events.add_row(f"{event.at:.1f}s", f"[{style}]{text}[/{style}]" if style else text)
        return Panel(
            Group(f"[bold]{snap['stage']}[/bold]", fleet, summary, *lines, events),
            title=f"zdmigrate demo · {self.progress.strategy} · {self.progress.elapsed():.0f}s",
            border_style="blue", padding=(0, 1),
        )

    def _versions(self, running: dict[str, int]) -> list[str]:
        """The app's usual versions first, then any other seen or running."""
        return list(dict.fromkeys([*self.progress.versions, *self.stats.versions(), *running]))

    def _fleet(self, snap: dict[str, object]) -> RenderableType:
        running: dict[str, int] = snap["running"]  # type: ignore[assignment]
        shares: dict[str, float] = snap["shares"]  # type: ignore[assignment]
        seen: dict[str, int] = snap["seen"]  # type: ignore[assignment]
        table = Table(title="fleet and traffic (seen: instances zdmigrate sees heartbeating)",
                      title_justify="left", expand=True, header_style="bold")
        table.add_column(f"{self.progress.app} version", no_wrap=True)
        for column in ("instances", "seen", "traffic", "requests", "failed", "req/s", "p50 ms",
                       "p99 ms"):
            table.add_column(column, justify="right")
        versions = self._versions(running)
        for version in versions:
            t = self.stats.snapshot(version)
            failed = f"[red]{t.failed:,}[/red]" if t.failed else "[green]0[/green]"
            table.add_row(
                f"{version} {self.progress.role(version)}", str(running.get(version, 0)),
                str(seen.get(version, 0)), f"{100 * shares.get(version, 0.0):.0f}%"
                if running.get(version) else "-",
                f"{t.requests:,}", failed, f"{t.rate:.0f}", f"{t.p50_ms:.1f}", f"{t.p99_ms:.1f}",
            )
        total = self.stats.total()
        table.add_row("all", "", "", "", f"{total.requests:,}",
                      f"[red]{total.failed:,}[/red]" if total.failed else "[green]0[/green]",
                      "", f"{total.p50_ms:.1f}", f"{total.p99_ms:.1f}", style="bold")
        return table

    def _migrations(self, snap: dict[str, object]) -> RenderableType:
        phases: dict[str, Phase] = snap["phases"]  # type: ignore[assignment]
        ids = self.progress.migrations
        half = (len(ids) + 1) // 2
        table = Table(title="migrations", title_justify="left", expand=True, show_header=False,
                      box=None)
        for _ in range(2):
            table.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
            table.add_column(min_width=11, no_wrap=True)
        for row in range(half):
            cells: list[str] = []
            for mid in (ids[row], ids[row + half] if row + half < len(ids) else None):
                if mid is None:
                    cells += ["", ""]
                    continue
                phase = phases.get(mid, Phase.PENDING)
                style = _PHASE_STYLE[phase]
                cells += [mid, f"[{style}]{phase}[/{style}]" if style else str(phase)]
            table.add_row(*cells)
        return table

    def _backfills(self, snap: dict[str, object]) -> RenderableType:
        backfills: list[dict[str, object]] = snap["backfills"]  # type: ignore[assignment]
        table = Table(title="backfills", title_justify="left", expand=True, show_header=False,
                      box=None)
        table.add_column(ratio=3)
        table.add_column(ratio=3)
        table.add_column(ratio=2, justify="right")
        if not backfills:
            table.add_row("[dim]none yet[/dim]", "", "")
        for b in backfills:
            done = int(b.get("rows_done") or 0)  # type: ignore[call-overload]
            total = max(done, int(b.get("rows_total") or 0))  # type: ignore[call-overload]
            finished = b.get("status") == "done"
            bar = ProgressBar(total=total or 1, completed=total if finished else done, width=30)
            table.add_row(f"{b['migration_id']} {b['table_name']}", bar,
                          f"{done:,} rows {b.get('status')}")
        return table

    def _events(self) -> RenderableType:
        table = Table(title="pipeline", title_justify="left", expand=True, show_header=False,
                      box=None)
        table.add_column(width=7, justify="right")
        table.add_column(ratio=1, overflow="fold")
        for event in self.progress.recent_events(10):
            style = _EVENT_STYLE.get(event.kind, "")
            text = event.text.replace("[", "\\[")
            table.add_row(f"{event.at:.1f}s", f"[{style}]{text}[/{style}]" if style else text)
        return table
