"""`adopt`: take an existing Alembic history as the baseline, marking it complete without running it."""

from __future__ import annotations

from zdmigrate import state
from zdmigrate.config import Settings
from zdmigrate.engine.session import Log, quiet, session
from zdmigrate.errors import BadInput, PhaseRefused
from zdmigrate.migration import find, load_migrations
from zdmigrate.phases import Phase


def adopt(
    settings: Settings, revision: str | None = None, *, log: Log = quiet
) -> list[str]:
    """Take an existing Alembic history as the baseline: mark `revision` and every
    migration before it complete, without running them. Returns the ids marked.

    Without `revision`, reads it from the database's ``alembic_version`` table
    (which zdmigrate never writes). Refused (exit 1) for a migration zdmigrate has
    already started, so it never hides work that is half done.
    """
    migrations = load_migrations(settings.migrations)
    if revision is not None:
        baseline = find(migrations, revision)
    with session(settings, "adopt", lock=True, log=log, migrations=migrations) as run:
        if revision is None:
            exists = run.conn.execute("SELECT to_regclass('alembic_version')").fetchone()
            rows = run.conn.execute("SELECT version_num FROM alembic_version").fetchall() if (
                exists and exists[0]) else []
            if len(rows) != 1:
                raise BadInput(
                    "cannot read one revision from alembic_version "
                    f"({'no such table' if not rows else f'{len(rows)} rows'})",
                    hint="pass the baseline revision: zdmigrate adopt REVISION",
                )
            baseline = find(migrations, str(rows[0][0]))
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
                state.set_phase(run.conn, run.schema, migration.id, Phase.CONTRACT,
                                migration.checksum)
                state.log_start(
                    run.conn, run.schema, migration_id=migration.id, action="advance",
                    from_phase=Phase.PENDING, to_phase=Phase.CONTRACT, actor=run.actor,
                    outcome="done", message=f"adopted: part of the Alembic history up to "
                    f"{baseline.id}; not run by zdmigrate",
                )
                state.notify_phase(run.conn, run.schema, migration.id, Phase.CONTRACT)
        for migration in adopted:
            log(f"{migration.id}: adopted as complete")
        return [m.id for m in adopted]
