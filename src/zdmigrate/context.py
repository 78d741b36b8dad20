"""The phase context handed to a migration's phase functions: `ctx.execute`, `ctx.op`, `ctx.backfill`.

A context does no I/O itself. Every call becomes a `Step` passed to a sink: when
rendering (`plan`, `lint`) the sink collects steps; when running, the engine's
sink executes each step at once, in its own short transaction, and records it.
So a phase function is replayed on a rerun and its done steps are skipped: keep
phase functions deterministic (the same steps in the same order every run).

``ctx.op`` is an Alembic `Operations` in offline mode: each ``ctx.op.add_column``
(or any other op) renders its SQL exactly as ``alembic upgrade --sql`` would,
and that SQL runs as a step. Ops that need a live connection (``get_bind``,
reflection) are not available.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from zdmigrate.phases import Phase
from zdmigrate.steps import (
    BackfillStep,
    Params,
    Source,
    SQLStep,
    Step,
    caller_source,
    needs_autocommit,
    split_sql,
)

if TYPE_CHECKING:
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

StepSink = Callable[[Step], None]


class PhaseContext:
    """What a phase function receives as `ctx`.

        def expand(ctx):
            ctx.execute("ALTER TABLE users ADD COLUMN full_name text")
            ctx.op.create_index("ix_users_email", "users", ["email"],
                                postgresql_concurrently=True)

        def backfill(ctx):
            ctx.backfill("users", set={"full_name": "name"}, where="full_name IS NULL")
    """

    def __init__(
        self, migration_id: str, phase: Phase, direction: str, sink: StepSink
    ) -> None:
        self.migration_id = migration_id
        self.phase = phase
        self.direction = direction
        self._sink = sink
        self._op: Operations | None = None

    def execute(self, sql: str, params: Params = None) -> None:
        """Run SQL as one step per statement (each in its own short transaction).

        With `params` the text must be a single statement; values are passed as
        bind parameters (``%s`` or ``%(name)s``), never formatted into the SQL.
        """
        source = caller_source()
        if params is not None:
            self._sink(SQLStep(sql.strip(), params, source, needs_autocommit(sql)))
            return
        for statement, line_offset in split_sql(sql):
            where = Source(source.path, source.line + line_offset) if source else None
            self._sink(SQLStep(statement, None, where, needs_autocommit(statement)))

    def backfill(
        self,
        table: str,
        set: Mapping[str, str],
        where: str | None = None,
        *,
        verify: str | None = None,
        schema: str | None = None,
        **options: Any,
    ) -> None:
        """Copy data in batches: ``UPDATE table SET col = expr ... WHERE where``.

        `where` must select only rows that still need the change, so rows the app
        already wrote correctly are left alone and a repeated batch is harmless.
        """
        if schema is None and "." in table:
            schema, table = table.split(".", 1)
        self._sink(
            BackfillStep(
                table=table, set=dict(set), where=where, verify=verify, schema=schema,
                source=caller_source(), options=dict(options),
            )
        )

    @property
    def op(self) -> Operations:
        """Alembic operations whose rendered SQL runs as steps of this phase."""
        if self._op is None:
            from alembic.operations import Operations

            self._op = Operations(offline_migration_context(self._sink))
        return self._op


class _StatementBuffer:
    """The output buffer of an offline Alembic context: each write is one statement.

    When linting (`zdmigrate._lint_render`), a bare COMMIT/BEGIN (what
    ``autocommit_block()`` writes) is a transaction boundary, not a statement.
    """

    def __init__(self, sink: StepSink) -> None:
        self.sink = sink

    def write(self, text: str) -> None:
        statement = text.strip()
        if statement.endswith(";"):
            statement = statement[:-1].rstrip()
        if not statement:
            return
        source = caller_source()
        from zdmigrate import _lint_render

        if _lint_render.active() is not None:
            word = _lint_render.transaction_word(statement)
            if word is not None:
                self.sink(_lint_render.TransactionBoundary(word, source))  # type: ignore[arg-type]
                return
            if ";" not in statement:
                # one statement: the linter parses it and decides autocommit itself
                self.sink(SQLStep(statement, None, source, False))
                return
        for part, line_offset in split_sql(statement):
            where = Source(source.path, source.line + line_offset) if source else None
            self.sink(SQLStep(part, None, where, needs_autocommit(part)))

    def flush(self) -> None:
        pass


def offline_migration_context(sink: StepSink) -> MigrationContext:
    """An Alembic MigrationContext that renders PostgreSQL SQL into `sink`.

    When linting with ``--env``, this is the context the project's env.py
    configured (offline), now writing into `sink`.
    """
    from alembic.runtime.migration import MigrationContext

    from zdmigrate import _lint_render

    mode = _lint_render.active()
    if mode is None:
        return MigrationContext.configure(
            dialect_name="postgresql",
            opts={"as_sql": True, "output_buffer": _StatementBuffer(sink), "literal_binds": True},
        )
    # linting: one context for the whole run (env.py's, or our own), writing into `sink`
    context = mode.env_context or mode.shared.get("context")
    if context is None:
        buffer = _StatementBuffer(sink)
        context = MigrationContext.configure(
            dialect_name="postgresql",
            opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True},
        )
        _lint_render.install(context, lambda event: buffer.sink(event), caller_source)
        mode.shared["context"] = context
    if isinstance(context.output_buffer, _StatementBuffer):
        context.output_buffer.sink = sink
    return context


def statement_buffer(sink: StepSink) -> Any:
    """The output buffer that turns what an offline Alembic context writes into steps for `sink`."""
    return _StatementBuffer(sink)
