"""`backfill`: run, resume, pause or redo the backfill steps of a migration, gated like the phase."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zdmigrate import backfill as backfill_module
from zdmigrate import db
from zdmigrate.config import Settings
from zdmigrate.engine.selection import default_migration
from zdmigrate.errors import BadInput, CheckFailed
from zdmigrate.migration import find, load_migrations
from zdmigrate.phases import Phase
from zdmigrate.steps import BackfillStep

if TYPE_CHECKING:
    from zdmigrate.backfill import Reporter
    from zdmigrate.fleet import Instance


@dataclass
class BackfillRun:
    """What `zdmigrate backfill` did for one migration."""

    migration_id: str
    results: list[Any]  # list[backfill.BackfillResult]
    action: str = "run"  # run, pause or resume
    changed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "migration": self.migration_id, "action": self.action, "changed": self.changed,
            "backfills": [r.as_dict() for r in self.results],
        }


def backfill(
    settings: Settings,
    migration_id: str | None = None,
    *,
    workers: int | None = None,
    pause: bool = False,
    resume: bool = False,
    again: bool = False,
    reporter: Reporter | None = None,
    fleet_instances: Callable[[], Sequence[Instance]] | None = None,
    **options: Any,
) -> BackfillRun:
    """Run or resume the backfill steps of a migration (default: the first at dual-write).

    Safe to run in several processes on several machines at once: they share the
    work. Refused (exit 1) while the backfill phase's checks fail, e.g. while an
    app version that does not write both shapes is live. `pause`/`resume` flip the
    switch that every running worker obeys, and return at once. `again` walks a
    finished backfill once more (after verification found rows that disagree).
    `fleet_instances`: the live instances of the whole set when this database is
    one target of several (`fleet.SharedFleet`), for the backfill phase's fleet check.
    """
    from zdmigrate.engine import status

    if pause and resume:
        raise BadInput("--pause and --resume exclude each other")
    migrations = load_migrations(settings.migrations)
    statuses = {s.id: s for s in status(settings, fleet_instances=fleet_instances)}
    if migration_id is None:
        chosen = default_migration(migrations, lambda mid: statuses[mid].phase, "backfill")
        if chosen is None:
            raise BadInput(
                "no migration is waiting for its backfill (none is at dual-write)",
                hint="name the migration: zdmigrate backfill MIGRATION",
            )
        migration = chosen
    else:
        migration = find(migrations, migration_id)
    steps = [s for s in migration.render(Phase.BACKFILL) if isinstance(s, BackfillStep)]
    if not steps:
        raise BadInput(f"{migration.id} has no backfill step")
    if pause or resume:
        with db.connect(settings, application_name="zdmigrate backfill") as conn:
            changed = backfill_module.set_paused(
                conn, settings.state_schema, migration.id, steps, paused=pause
            )
        return BackfillRun(migration.id, [], "pause" if pause else "resume", changed)
    current = statuses[migration.id]
    if current.phase < Phase.DUAL_WRITE:
        raise CheckFailed(
            f"{migration.id} is at {current.phase}: its backfill needs dual-write first "
            "(rows the app writes during the backfill would be missed)",
            hint=f"zdmigrate phase advance {migration.id} --to dual-write",
        )
    if current.next is Phase.BACKFILL and current.blocked_by:
        raise CheckFailed(f"{migration.id}: the backfill may not run yet", current.blocked_by)
    if again:
        with db.connect(settings, application_name="zdmigrate backfill") as conn:
            backfill_module.restart_finished(conn, settings.state_schema, migration.id, steps)
    results = [
        backfill_module.run_backfill(
            settings, migration_id=migration.id, step=step, workers=workers,
            reporter=reporter, **options,
        )
        for step in steps
    ]
    blockers = [
        b for r in results if r.verification is not None
        for b in [r.verification.blocker(migration.id)] if b is not None
    ]
    if blockers:
        raise CheckFailed(f"{migration.id}: backfill finished, but rows disagree", blockers)
    return BackfillRun(migration.id, results)
