"""`adopt`: take an existing Alembic history as the baseline, marking it complete without running it."""

from __future__ import annotations

from zdmigrate.config import Settings
from zdmigrate.engine.adoption import alembic_versions
from zdmigrate.engine.session import Log, quiet, session
from zdmigrate.errors import BadInput, PhaseRefused, UnknownMigration
from zdmigrate.migration import find, load_migrations
from zdmigrate.phases import Phase


def adopt(
    settings: Settings, revision: str | None = None, *, log: Log = quiet
) -> list[str]:
    """Take an existing Alembic history as the baseline: mark `revision` and every
    migration before it complete, without running them. Returns the ids marked.

    Without `revision`, reads it from the database's ``alembic_version`` table
    (which zdmigrate moves only when a migration completes). Refused (exit 1) for a migration zdmigrate has
    already started, so it never hides work that is half done.
    """
    migrations = load_migrations(settings.migrations)
    if revision is not None:
        baseline = find(migrations, revision)
    with session(settings, "adopt", lock=True, log=log, migrations=migrations) as run:
        if revision is None:
            rows = alembic_versions(run.conn)
            if not rows or len(rows) != 1:
                raise BadInput(
                    "cannot read one revision from alembic_version "
                    f"({'no such table' if rows is None else f'{len(rows)} rows'})",
                    hint="pass the baseline revision: zdmigrate adopt REVISION",
                )
            try:
                baseline = find(migrations, rows[0])
            except UnknownMigration as exc:
                raise UnknownMigration(
                    f"alembic_version names {rows[0]}, which is not among the "
                    f"{len(migrations)} migration(s) in {settings.migrations}",
                    hint="point --migrations (or ZDMIGRATE_MIGRATIONS) at the Alembic versions "
                    "directory",
                ) from exc
        ids = [m.id for m in migrations]
        upto = [m for m in migrations[: ids.index(baseline.id) + 1]]
        started = [m.id for m in upto if m.id in run.states
                   and run.phase_of(m.id) not in (Phase.PENDING, Phase.CONTRACT)]
        if started:
            raise PhaseRefused(
                f"cannot adopt up to {baseline.id}: zdmigrate already started "
                + ", ".join(started),
                hint="finish or roll back those migrations first",
            )
        adopted = [m for m in upto if run.phase_of(m.id) is Phase.PENDING]
        with run.conn.transaction():
            for migration in adopted:
                run.store.migrations.set_phase(migration.id, Phase.CONTRACT, migration.checksum)
                run.store.phase_log.start(
                    migration_id=migration.id, action="advance",
                    from_phase=Phase.PENDING, to_phase=Phase.CONTRACT, actor=run.actor,
                    outcome="done", message=f"adopted: part of the Alembic history up to "
                    f"{baseline.id}; not run by zdmigrate",
                )
                run.store.migrations.notify_phase(migration.id, Phase.CONTRACT)
        for migration in adopted:
            log(f"{migration.id}: adopted as complete")
        return [m.id for m in adopted]
