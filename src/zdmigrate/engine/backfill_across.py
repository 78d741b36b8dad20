"""`backfill` across targets: each target's backfill as alone, several at once, one total.

Every target runs exactly the backfill `zdmigrate backfill` runs on one database
(resumable from its saved cursor, throttled, its own workers), at most
`parallel` targets at once. Their events add up to one total (`TargetsProgress`).
A target that fails stops where it is; the others run to their end; then
`TargetsFailed` (exit 3) names the failed ones, and the same command run again
resumes them (finished targets are over in a moment).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from zdmigrate import db, fleet
from zdmigrate.backfill.across import TargetsProgress, TargetsReporter, TotalEvent, planned_rows
from zdmigrate.config import Settings
from zdmigrate.engine.backfill import BackfillRun, backfill
from zdmigrate.engine.results import MigrationStatus
from zdmigrate.errors import BadInput, TargetsFailed, ZdmigrateError, first_line
from zdmigrate.migration import Migration, find, load_migrations
from zdmigrate.phases import Phase
from zdmigrate.state import Store
from zdmigrate.steps import BackfillStep
from zdmigrate.targets import NamedTarget, each_target


@dataclass
class TargetBackfill:
    """What the backfill did on one target: its run, or the error that stopped it."""

    target: str
    run: BackfillRun | None = None
    error: ZdmigrateError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target, "ok": self.ok}
        if self.run is not None:
            out.update(self.run.as_dict())
        if self.error is not None:
            out["error"] = {"type": type(self.error).__name__, "message": self.error.message,
                            "exit_code": self.error.exit_code}
        return out


@dataclass
class BackfillAcross:
    """What `zdmigrate backfill` did across targets: one entry per target, and the total."""

    migration_id: str
    targets: list[TargetBackfill] = field(default_factory=list)
    total: TotalEvent | None = None

    @property
    def failed(self) -> list[str]:
        return [t.target for t in self.targets if not t.ok]

    def as_dict(self) -> dict[str, Any]:
        return {
            "migration": self.migration_id,
            "total": self.total.as_dict() if self.total is not None else None,
            "targets": [t.as_dict() for t in self.targets],
        }


def backfill_across(
    settings: Settings,
    targets: Sequence[NamedTarget],
    migration_id: str | None = None,
    *,
    parallel: int | None = None,
    workers: int | None = None,
    pause: bool = False,
    resume: bool = False,
    again: bool = False,
    reporter: TargetsReporter | None = None,
    **options: Any,
) -> BackfillAcross:
    """Run or resume the backfill of a migration on every target, `parallel` at a time.

    At most `parallel` targets at once (default: the settings' `parallel`).
    Without `migration_id`, the first migration at dual-write on any target. The
    fleet checks see the live instances of every target (`fleet.SharedFleet`).
    `reporter` gets every target's events (tagged with its name) and the total.
    `pause`/`resume` flip the switch on every target, and return at once.
    Raises `TargetsFailed` (exit 3) naming each target that failed, after the
    others finished; its `done` is this function's result for the ones that did.

        backfill_across(settings, load_targets(settings, ["shard-*"]), "0002_rename",
                        parallel=8)
    """
    if not targets:
        raise BadInput("backfill across targets needs at least one target")
    parallel = parallel or settings.parallel
    migrations = load_migrations(settings.migrations)
    migration = (find(migrations, migration_id) if migration_id is not None
                 else _waiting(settings, targets, migrations, parallel))
    steps = [s for s in migration.render(Phase.BACKFILL) if isinstance(s, BackfillStep)]
    if not steps:
        raise BadInput(f"{migration.id} has no backfill step")
    if pause or resume:
        return _switch(settings, targets, migration.id, pause=pause, resume=resume,
                       parallel=parallel)
    shared = fleet.SharedFleet(targets, settings, parallel=parallel)
    if migration.compat:
        # the backfill's fleet check needs every target's instances: a target that
        # cannot be read stops the command here (exit 3, naming it), before any starts
        shared()
    plans, _ = each_target(  # a target whose plan cannot be read fails below, in its run
        targets, lambda t: _plan(settings, t, migration.id, steps), parallel=parallel)
    planned = {(name, table): rows for name, tables in plans.items()
               for table, rows in tables.items()}
    names = [t.name for t in targets]
    progress = TargetsProgress(reporter, migration.id, names, planned)
    progress.tick(force=True)
    # one stop per target: a target whose backfill fails stops its own workers only
    stops = {t.name: threading.Event() for t in targets}

    def interrupt() -> None:
        for event in stops.values():
            event.set()

    def one(target: NamedTarget) -> BackfillRun:
        try:
            run = backfill(
                settings.with_(database_url=target.url), migration.id, workers=workers,
                again=again, reporter=progress.for_target(target.name), fleet_instances=shared,
                stop=stops[target.name], **options,
            )
        except ZdmigrateError as exc:
            progress.finished(target.name, ok=False, message=first_line(exc))
            raise
        except BaseException as exc:
            progress.finished(target.name, ok=False, message=type(exc).__name__)
            raise
        progress.finished(target.name, ok=True)
        return run

    runs, failures = each_target(targets, one, parallel=parallel, on_interrupt=interrupt)
    result = BackfillAcross(
        migration.id,
        [TargetBackfill(n, runs.get(n), failures.get(n)) for n in names],
        progress.total(),
    )
    if failures:
        error = TargetsFailed(
            f"backfill of {migration.id}", failures,
            hint=f"the other {len(names) - len(failures)} target(s) finished; fix the cause and "
            "run the same command again: the failed targets resume from their saved cursors",
        )
        error.done = result
        raise error
    return result


def _switch(
    settings: Settings, targets: Sequence[NamedTarget], migration_id: str, *, pause: bool,
    resume: bool, parallel: int,
) -> BackfillAcross:
    """Pause or resume the backfill on every target (each as `backfill --pause` alone)."""
    runs, failures = each_target(
        targets, lambda t: backfill(settings.with_(database_url=t.url), migration_id,
                                    pause=pause, resume=resume),
        parallel=parallel)
    result = BackfillAcross(migration_id, [TargetBackfill(t.name, runs.get(t.name),
                                                          failures.get(t.name)) for t in targets])
    if failures:
        error = TargetsFailed(f"backfill {'--pause' if pause else '--resume'} of {migration_id}",
                              failures, hint="run it again when the target is back")
        error.done = result
        raise error
    return result


def _plan(
    settings: Settings, target: NamedTarget, migration_id: str, steps: Sequence[BackfillStep]
) -> dict[str, tuple[int, int | None]]:
    with db.connect(target.url, application_name="zdmigrate backfill") as conn:
        return planned_rows(conn, settings.state_schema, migration_id, steps)


def _waiting(
    settings: Settings, targets: Sequence[NamedTarget], migrations: Sequence[Migration],
    parallel: int,
) -> Migration:
    """The first migration at dual-write on any target (the default of `backfill`)."""

    def phases(target: NamedTarget) -> dict[str, Phase]:
        with db.connect(target.url, application_name="zdmigrate backfill") as conn:
            store = Store(conn, settings.state_schema)
            if not store.exists():
                return {}
            rows = store.migrations.load()
        return {mid: row.phase for mid, row in rows.items()}

    found, failures = each_target(targets, phases, parallel=parallel)
    if failures:
        raise TargetsFailed("backfill: cannot read which migration waits for its backfill",
                            failures, hint="name the migration, or fix the target")
    for migration in migrations:
        if any(p.get(migration.id) is Phase.DUAL_WRITE for p in found.values()):
            return migration
    raise BadInput(
        "no migration is waiting for its backfill (none is at dual-write on any target)",
        hint="name the migration: zdmigrate backfill MIGRATION",
    )


def backfills_by_target(by_target: Mapping[str, MigrationStatus]) -> dict[str, Any]:
    """The backfill of one migration over every target, for `status`: a line per target
    and table, and the total (rows done of rows to do over all of them).

        {"rows_done": 12400, "rows_total": 20000, "percent": 62.0, "targets_done": 3,
         "lines": [{"target": "shard-01", "table": "users", "status": "done", ...}, ...]}

    Empty when no target has started the migration's backfill.
    """
    lines: list[dict[str, Any]] = []
    for name, migration in by_target.items():
        for row in migration.backfills:
            done = int(row.get("rows_done") or 0)
            total = row.get("rows_total")
            total = done if row.get("status") == "done" else (
                max(int(total), done) if total is not None else None)
            lines.append({
                "target": name, "table": row.get("table_name"), "status": row.get("status"),
                "rows_done": done, "rows_total": total,
                "percent": round(100.0 * done / total, 1) if total else None,
                "live_workers": row.get("live_workers", 0),
            })
    if not lines:
        return {}
    known = [line for line in lines if line["rows_total"] is not None]
    rows_done = sum(line["rows_done"] for line in lines)
    rows_total = sum(line["rows_total"] for line in known) if len(known) == len(lines) else None
    done_targets = {line["target"] for line in lines} - {
        line["target"] for line in lines if line["status"] != "done"}
    return {
        "rows_done": rows_done, "rows_total": rows_total,
        "percent": round(100.0 * rows_done / rows_total, 1) if rows_total else None,
        "targets_started": len({line["target"] for line in lines}),
        "targets_done": len(done_targets), "lines": lines,
    }
