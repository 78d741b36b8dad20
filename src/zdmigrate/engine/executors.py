"""One executor per step kind, chosen by the step's type (pgroll's DBAction.Execute), and the
loop that runs a phase's steps, recording each one when done so a killed run resumes.

Warning: each SQL step runs in its own short transaction bounded by lock_timeout
(autocommit steps outside any transaction); see `db.execute_step`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from zdmigrate import backfill, db
from zdmigrate.engine.results import Transition
from zdmigrate.engine.session import Run
from zdmigrate.errors import MigrationChanged, OperationalError
from zdmigrate.failpoints import failpoint
from zdmigrate.migration import Migration
from zdmigrate.phases import Phase
from zdmigrate.state import Store
from zdmigrate.steps import BackfillStep, GeneratedSQLStep, SQLStep, Step


@dataclass(frozen=True)
class StepRun:
    """Where a step runs: its session, migration, phase, direction and place in the phase."""

    run: Run
    migration: Migration
    phase: Phase
    direction: str  # "advance" or "rollback"
    index: int

    def record(self, conn: psycopg.Connection[Any], step: Step) -> None:
        """Mark the step done (in the caller's transaction)."""
        failpoint("engine.step.after_work")
        store = self.run.store if conn is self.run.conn else Store(conn, self.run.schema)
        store.steps.mark_done(self.migration.id, self.phase, self.direction, self.index, step.key)

    def mark_started(self, step: Step) -> None:
        """Mark a step that is not atomic started, committed before it runs: a rerun after
        a kill then knows that what it finds (a half-built index) is its own leftover."""
        with self.run.conn.transaction():
            self.run.store.steps.mark_started(self.migration.id, self.phase, self.direction,
                                              self.index, step.key)

    def record_now(self, step: Step) -> None:
        with self.run.conn.transaction():
            self.record(self.run.conn, step)


def execute_sql(where: StepRun, step: SQLStep) -> None:
    """One statement, its done-mark committed with it (or right after, for autocommit)."""
    run = where.run
    run.log(f"  {where.phase} step {where.index + 1}: {one_line(step.sql)}")
    db.execute_step(run.conn, step, run.settings,
                    record=lambda conn: where.record(conn, step), log=run.log)


def execute_generated(where: StepRun, step: GeneratedSQLStep) -> None:
    """Statements spelled out from the live catalog now, each run as a SQL step."""
    run = where.run
    run.log(f"  {where.phase} step {where.index + 1}: {step.description}")
    for statement in db.generated_statements(run.conn, step):
        run.log(f"    {one_line(statement.sql)}")
        db.execute_step(run.conn, statement, run.settings, log=run.log)
    where.record_now(step)


def execute_backfill(where: StepRun, step: BackfillStep) -> None:
    """A whole backfill when advancing (resumable on its own); nothing to undo on rollback."""
    run = where.run
    if where.direction == "advance":
        run.log(f"  {where.phase} step {where.index + 1}: backfill {step.qualified_table}")
        result = backfill.run_backfill(
            run.settings, migration_id=where.migration.id, step=step,
            reporter=run.backfill_reporter,
        )
        if not result.done:
            raise OperationalError(
                f"backfill of {step.qualified_table} {result.status} before the end",
                hint=f"resume it with `zdmigrate backfill {where.migration.id}`",
            )
        run.log(f"  backfilled {result.rows_done:,} row(s) of {step.qualified_table}")
    where.record_now(step)


Executor = Callable[[StepRun, Any], None]

#: The executor of each step kind. A new kind of step adds its executor here.
EXECUTORS: dict[type[Any], Executor] = {
    SQLStep: execute_sql,
    GeneratedSQLStep: execute_generated,
    BackfillStep: execute_backfill,
}


def executor_for(step: Step) -> Executor:
    try:
        return EXECUTORS[type(step)]
    except KeyError:
        raise TypeError(f"no executor for a step of kind {type(step).__name__}") from None


def run_logged(
    run: Run, migration: Migration, phase: Phase, direction: str, transition: Transition,
    log_id: int, accept_changed: bool,
) -> None:
    """Run the steps; on any failure mark the phase log entry failed, then re-raise."""
    try:
        run_steps(run, migration, phase, direction, transition, accept_changed)
    except BaseException as exc:
        _log_failure(run, log_id, exc)
        raise


def _log_failure(run: Run, log_id: int, exc: BaseException) -> None:
    if run.conn.closed or run.conn.broken:
        return
    try:
        with run.conn.transaction():
            run.store.phase_log.finish(log_id, "failed", str(exc)[:2000])
    except psycopg.Error:
        pass


def run_steps(
    run: Run, migration: Migration, phase: Phase, direction: str, transition: Transition,
    accept_changed: bool,
) -> None:
    """Run every step of `phase` in `direction`, skipping those a previous run finished."""
    done = run.store.steps.done(migration.id, phase, direction)
    counter = iter(range(1_000_000))

    def execute(step: Step) -> None:
        index = next(counter)
        if index in done:
            if done[index] != step.key and not accept_changed:
                raise MigrationChanged(
                    f"{migration.path}: step {index + 1} of {phase} ({direction}) is not the "
                    "step that ran before; the file changed after the phase started",
                    hint="revert the file, or pass --accept-changed if you are sure",
                )
            transition.steps_skipped += 1
            return
        where = StepRun(run, migration, phase, direction, index)
        failpoint("engine.step.before")
        if _not_atomic(step):
            where.mark_started(step)
        executor_for(step)(where, step)
        failpoint("engine.step.after_commit")
        transition.steps_run += 1

    migration.emit(phase, direction, execute)


def _not_atomic(step: Step) -> bool:
    """Can the step leave part of its work behind when it fails or the run dies?

    A transactional step commits with its done-mark or not at all; a CONCURRENTLY
    statement (or a generated step's series of them) can leave an index half built.
    """
    return isinstance(step, GeneratedSQLStep) or (isinstance(step, SQLStep) and step.autocommit)


def one_line(text: str, limit: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
