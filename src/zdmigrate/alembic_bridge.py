"""Alembic's view of a zdmigrate migration: `alembic upgrade head` runs all its phases in order.

Teams keep running ``alembic upgrade head`` on dev and test databases, in fixtures
and CI jobs, where no old app version runs and nothing needs phasing. Two lines at
the end of a migration file make it a complete Alembic revision as well:

    from zdmigrate.alembic_bridge import alembic_functions
    upgrade, downgrade = alembic_functions(globals())

``upgrade()`` runs expand, dual-write, backfill (one UPDATE per backfill, not in
batches), switch-read and contract back to back on Alembic's connection;
``downgrade()`` undoes the phases before contract, newest first, and refuses a
migration whose contract does work: contract is the point of no return, in
Alembic as in zdmigrate. ``alembic upgrade --sql`` renders the same SQL offline.

Warning: this is for databases without live traffic. It runs the phases in one
go inside Alembic's transaction (CONCURRENTLY statements in Alembic's
``autocommit_block``), with none of zdmigrate's gates, lock timeouts or batching.
Production goes through ``zdmigrate phase advance``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from zdmigrate.errors import BadInput
from zdmigrate.phases import WORK_PHASES, Phase
from zdmigrate.state import Store
from zdmigrate.steps import BackfillStep, GeneratedSQLStep, Params, SQLStep, Step

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext

    from zdmigrate.migration import Migration

AlembicFunction = Callable[[], None]


def alembic_functions(namespace: Mapping[str, Any]) -> tuple[AlembicFunction, AlembicFunction]:
    """`upgrade` and `downgrade` for the migration file whose globals() is `namespace`."""

    def upgrade() -> None:
        migration = _migration(namespace)
        context = _context()
        ledger = _Ledger.open(context)
        if ledger is not None and ledger.already_complete(migration):
            return
        runner = _Runner(context)
        for phase in WORK_PHASES:
            migration.emit(phase, "advance", runner)
        if ledger is not None:
            ledger.record_complete(migration)

    def downgrade() -> None:
        migration = _migration(namespace)
        if migration.render(Phase.CONTRACT):
            raise BadInput(
                f"{migration.id}: cannot downgrade: its contract phase ran, and contract is "
                "the point of no return",
                hint="write a new migration that brings back what you need, or recreate "
                "the dev database",
            )
        runner = _Runner(_context())
        for phase in reversed(WORK_PHASES):
            if phase is Phase.CONTRACT or not migration.defines(phase):
                continue
            if not migration.can_roll_back(phase):
                raise BadInput(
                    f"{migration.id}: cannot downgrade: {phase} has no rollback_"
                    f"{phase.function_name}()",
                    hint=f"add rollback_{phase.function_name}(ctx) to {migration.path.name}",
                )
            migration.emit(phase, "rollback", runner)

    upgrade.__doc__ = "Run every phase of this migration in order (dev and test databases)."
    downgrade.__doc__ = "Undo the phases before contract, newest first."
    return upgrade, downgrade


def _migration(namespace: Mapping[str, Any]) -> Migration:
    from zdmigrate.migration import migration_from_module

    module = ModuleType(str(namespace.get("__name__", "migration")))
    module.__dict__.update(namespace)
    path = Path(str(namespace.get("__file__", "<migration>")))
    return migration_from_module(module, path)


def _context() -> MigrationContext:
    from alembic import op

    return op.get_context()


class _Ledger:
    """zdmigrate's record of this database, seen from `alembic upgrade` (psycopg 3 only).

    So that both agree: a migration zdmigrate finished is not run again; one it
    has in flight is refused (its phases are being run under zdmigrate's gates);
    one Alembic ran is recorded as complete for zdmigrate.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def open(cls, context: MigrationContext) -> _Ledger | None:
        if context.as_sql or context.bind is None:
            return None
        driver = getattr(context.bind.connection, "driver_connection", None)
        if not isinstance(driver, psycopg.Connection):
            return None
        from zdmigrate.config import Settings

        schema = Settings.load().state_schema
        store = Store(driver, schema)
        return cls(store) if store.exists() else None

    def already_complete(self, migration: Migration) -> bool:
        row = self.store.migrations.load().get(migration.id)
        if row is None or row.phase is Phase.PENDING:
            return False
        if row.phase is Phase.CONTRACT:
            return True
        raise BadInput(
            f"{migration.id} is at {row.phase} under zdmigrate on this database: "
            "`alembic upgrade` would run its remaining phases at once, without their gates",
            hint=f"advance it with `zdmigrate phase advance {migration.id}`",
        )

    def record_complete(self, migration: Migration) -> None:
        self.store.migrations.set_phase(migration.id, Phase.CONTRACT, migration.checksum)
        self.store.phase_log.start(
            migration_id=migration.id, action="advance",
            from_phase=Phase.PENDING, to_phase=Phase.CONTRACT, actor="alembic upgrade",
            outcome="done", message="every phase run at once by `alembic upgrade`",
        )


class _Runner:
    """A step sink that runs each step on Alembic's connection, or writes it in --sql mode."""

    def __init__(self, context: MigrationContext) -> None:
        self.context = context

    def __call__(self, step: Step) -> None:
        if isinstance(step, BackfillStep):
            self._run(SQLStep(backfill_statement(step), None, step.source))
        elif isinstance(step, GeneratedSQLStep):
            self._generated(step)
        else:
            self._run(step)

    def _run(self, step: SQLStep) -> None:
        if step.autocommit:
            with self.context.autocommit_block():
                self._execute(step.sql, step.params)
        else:
            self._execute(step.sql, step.params)

    def _execute(self, text: str, params: Params) -> list[Any]:
        """Run one statement on Alembic's connection; its rows, if it returns any.

        Through the DBAPI cursor, so that without parameters a ``%`` in the SQL
        is plain text (SQLAlchemy would hand the driver an empty parameter list).
        """
        if self.context.as_sql:
            self.context.impl.static_output(_inline(text, params) + ";\n")
            return []
        bind = self.context.bind
        assert bind is not None
        cursor = bind.connection.cursor()
        try:
            if params is None:
                cursor.execute(text)
            else:
                cursor.execute(text, params)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def _generated(self, step: GeneratedSQLStep) -> None:
        if self.context.as_sql:
            comment = "\n".join(f"-- {line}" for line in step.render().splitlines())
            self.context.impl.static_output(comment + "\n")
            return
        rows = self._execute(step.query, step.params)
        from zdmigrate.steps import needs_autocommit

        for row in rows:
            if row and row[0]:
                statement = str(row[0])
                self._run(SQLStep(statement, None, step.source, needs_autocommit(statement)))


def backfill_statement(step: BackfillStep) -> str:
    """A backfill as one UPDATE of every row that needs it (no traffic, no batches)."""
    target = sql.Identifier(step.schema, step.table) if step.schema else sql.Identifier(step.table)
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.SQL(expression))  # type: ignore[arg-type]
        for column, expression in step.set.items()
    )
    statement = sql.SQL("UPDATE {} SET {}").format(target, assignments)
    if step.where:
        statement = sql.SQL("{} WHERE {}").format(statement, sql.SQL(step.where))  # type: ignore[arg-type]
    return statement.as_string(None)


def _inline(text: str, params: Params) -> str:
    """SQL with its bind parameters as literals, for `alembic upgrade --sql` output only."""
    if params is None:
        return text
    if isinstance(params, Mapping):
        return text % {k: sql.Literal(v).as_string(None) for k, v in params.items()}
    return text % tuple(sql.Literal(v).as_string(None) for v in params)
