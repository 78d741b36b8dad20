"""`zdmigrate demo`: a column rename and the rest of the example history shipped under live traffic.

    from zdmigrate.demo import run_demo
    summary = run_demo(settings, strategy="canary", rows=2000, duration=10)
    assert summary.total.failed == 0

A simulated fleet of the shop (real connections in threads, each instance with
``application_name`` ``shop@VERSION`` and zdmigrate.runtime heartbeats) sends
reads and writes the whole time, while a deploy pipeline (`pipeline`) walks
`migrations_example/` through every phase around two releases deployed by the
chosen strategy (`strategies`). The result is a `DemoSummary`.

Modules: `database` (where it runs), `shop` (the app versions' requests),
`instances` (the fleet), `traffic` (counts and latencies), `strategies`,
`pipeline`, `monitor` and `progress` (what the views show; `zdmigrate.output.demo`
draws them), `summary`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

from zdmigrate import db
from zdmigrate.config import Settings
from zdmigrate.demo.database import demo_database
from zdmigrate.demo.instances import Fleet, Router
from zdmigrate.demo.monitor import Monitor
from zdmigrate.demo.pipeline import ContractRefusal, DemoFailed, Pipeline
from zdmigrate.demo.progress import DemoProgress
from zdmigrate.demo.shop import seed
from zdmigrate.demo.strategies import STRATEGIES, release_steps
from zdmigrate.demo.summary import DemoSummary
from zdmigrate.demo.traffic import TrafficStats
from zdmigrate.errors import BadInput
from zdmigrate.migration import load_migrations
from zdmigrate.state import Store

__all__ = ["STRATEGIES", "VIEWS", "ContractRefusal", "DemoFailed", "DemoSummary", "run_demo"]

#: How the demo shows itself: a live view (a terminal), plain lines, or nothing.
VIEWS = ("live", "plain", "quiet")
DEFAULT_ROWS = 20_000
DEFAULT_DURATION = 30.0
DEFAULT_RATE = 200.0


def run_demo(
    settings: Settings,
    *,
    migrations: Path,
    strategy: str = "rolling",
    rows: int = DEFAULT_ROWS,
    duration: float = DEFAULT_DURATION,
    rate: float = DEFAULT_RATE,
    view: str = "quiet",
    stream: TextIO | None = None,
) -> DemoSummary:
    """Run the demo on `settings.database_url` (a throw-away database there) or an embedded
    PostgreSQL; `duration` is the time spent holding each deploy step, spread over them."""
    if strategy not in STRATEGIES:
        raise BadInput(f"--strategy {strategy!r} is unknown; use one of {', '.join(STRATEGIES)}")
    if rows < 1:
        raise BadInput(f"--rows must be at least 1, not {rows}")
    if duration < 0:
        raise BadInput(f"--duration must not be negative, not {duration:g}")
    if rate <= 0:
        raise BadInput(f"--rate must be more than 0 requests per second, not {rate:g}")
    if view not in VIEWS:
        raise BadInput(f"view {view!r} is unknown; use one of {', '.join(VIEWS)}")
    load_migrations(migrations)  # bad files fail here, before any server starts
    # one hold before the first release, one after the last, one per deploy step of the
    # releases the example history needs (1.5, then two new versions)
    holds = 2 + 3 * len(release_steps(strategy, "old", "new"))
    started = time.monotonic()
    with demo_database(settings.database_url) as database:
        run_settings = settings.with_(database_url=database.url, migrations=migrations,
                                      actor=settings.actor or "zdmigrate demo pipeline")
        progress = DemoProgress(strategy=strategy, database=database.description)
        stats = TrafficStats()
        router = Router(rate)
        fleet = Fleet(database.url, stats=stats, router=router, seeded_rows=rows,
                      schema=settings.state_schema)
        pipeline = Pipeline(run_settings, fleet, router, progress, strategy=strategy, rows=rows,
                            hold_seconds=duration / holds)

        def seed_rows(count: int) -> None:
            with db.connect(database.url, application_name="zdmigrate demo seed") as conn:
                seed(conn, count)

        monitor = Monitor(database.url, settings.state_schema, progress).start()
        try:
            with _view(view, progress, stats, stream):
                progress.emit("info", f"running on {database.description}")
                try:
                    pipeline.run(seed_rows)
                finally:
                    fleet.stop_all()
                    progress.update(running={}, shares={})
                    monitor.poll_once()
        finally:
            monitor.stop()
        with db.connect(database.url, application_name="zdmigrate demo") as conn:
            backfills = Store(conn, settings.state_schema).backfills.progress()
        phases = dict(pipeline.phases)
        return DemoSummary(
            strategy=strategy, database=database.description,
            server_version=database.server_version,
            duration_seconds=time.monotonic() - started, total=stats.total(),
            versions=[stats.snapshot(v) for v in stats.versions()],
            migrations=[(m.id, phases[m.id]) for m in pipeline.migrations],
            backfills=backfills, record=pipeline.record,
        )


def _view(view: str, progress: DemoProgress, stats: TrafficStats, stream: TextIO | None):  # type: ignore[no-untyped-def]
    import contextlib
    import sys

    from zdmigrate.output.demo import live_view, plain_view

    out = stream or sys.stdout
    if view == "live":
        return live_view(progress, stats, out)
    if view == "plain":
        return plain_view(progress, stats, out)
    return contextlib.nullcontext()
