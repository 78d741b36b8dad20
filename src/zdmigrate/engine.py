"""advance, rollback, status and plan: migrations and their phases, carried out safely.

`advance` takes one migration through its next phase(s): it checks every gate in
`PHASE_CHECKS`, runs the phase's steps one by one (each recorded when done, so a
killed run resumes where it stopped), then records the new phase, logs it and
NOTIFYs listeners, all in one transaction. `rollback` undoes phases newest first,
never past contract. Only one run per database at a time (an advisory lock).

Warning: `advance` and `rollback` hold a session-level advisory lock on their
connection for the whole run; DDL steps take table locks only for the length of
their own short transaction, bounded by lock_timeout.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from zdmigrate import backfill, db, fleet, shadow_reads, state
from zdmigrate.config import Settings
from zdmigrate.errors import (
    BadInput,
    Blocker,
    MigrationChanged,
    OperationalError,
    OperationInvalid,
    PhaseRefused,
    RunLocked,
)
from zdmigrate.migration import Migration, children_of, find, load_migrations, parents_of
from zdmigrate.ops.base import Requirement
from zdmigrate.phases import Phase, phases_between
from zdmigrate.steps import BackfillStep, GeneratedSQLStep, SQLStep, Step

Log = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


# -- phase checks ---------------------------------------------------------------


@dataclass(frozen=True)
class CheckContext:
    """What a phase check sees: the migration, where it is going, and the database."""

    conn: psycopg.Connection[Any]
    settings: Settings
    migration: Migration
    migrations: Sequence[Migration]
    states: dict[str, state.MigrationRow]
    target: Phase
    actor: str
    override_reason: str | None = None
    #: True in a dry run once an earlier phase of this migration was only simulated:
    #: checks of the data that phase would have written cannot be made.
    simulated: bool = False

    def phase_of(self, migration_id: str) -> Phase:
        row = self.states.get(migration_id)
        return row.phase if row else Phase.PENDING


PhaseCheck = Callable[[CheckContext], list[Blocker]]


def check_previous_migrations(ctx: CheckContext) -> list[Blocker]:
    """A migration never stands in a later phase than the migration it comes after."""
    blockers = []
    for parent in parents_of(ctx.migration, ctx.migrations):
        parent_phase = ctx.phase_of(parent.id)
        if parent_phase < ctx.target:
            blockers.append(
                Blocker(
                    "previous-migration",
                    f"{parent.id} is at {parent_phase}; {ctx.migration.id} cannot enter "
                    f"{ctx.target} before it: advance {parent.id} first",
                    {"migration": parent.id, "phase": parent_phase.value},
                )
            )
    return blockers


def check_backfill_verified(ctx: CheckContext) -> list[Blocker]:
    """Switch-read needs zero rows where the new shape disagrees with the old."""
    if ctx.target is not Phase.SWITCH_READ or ctx.simulated:
        return []
    blockers = []
    for step in ctx.migration.render(Phase.BACKFILL):
        if not isinstance(step, BackfillStep):
            continue
        try:
            result = backfill.verify_backfill(ctx.conn, step)
        except (psycopg.Error, BadInput) as exc:
            ctx.conn.rollback() if not ctx.conn.autocommit else None
            blockers.append(Blocker("backfill-unverified", f"cannot verify {step.qualified_table}: {exc}"))
            continue
        blocker = result.blocker(ctx.migration.id)
        if blocker is not None:
            blockers.append(blocker)
    return blockers


def check_fleet(ctx: CheckContext) -> list[Blocker]:
    """Backfill needs dual-writing app versions; contract needs no old one live (fleet.py).

    Fleet data that cannot be read (no privilege on the instances table, say) proves
    nothing: the phase is refused, never entered on a guess.
    """
    try:
        return fleet.check_migration(ctx.conn, ctx.settings, ctx.migration, ctx.target)
    except psycopg.Error as exc:
        ctx.conn.rollback() if not ctx.conn.autocommit else None
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [Blocker(
            "fleet-unreadable",
            f"cannot read which app versions are live ({ctx.settings.state_schema}.instances, "
            f"pg_stat_activity): {reason}; not proven, so {ctx.target} is refused",
        )]


def check_shadow_reads(ctx: CheckContext) -> list[Blocker]:
    """Opt-in (``shadow_read_window``): switch-read needs clean app shadow reads."""
    window = ctx.settings.shadow_read_window
    if ctx.target is not Phase.SWITCH_READ or window <= 0:
        return []
    blocker = shadow_reads.blocker(ctx.conn, ctx.settings.state_schema, ctx.migration.id, window)
    return [blocker] if blocker is not None else []


def check_lint(ctx: CheckContext) -> list[Blocker]:
    """The phase about to run has no lint errors (destructive DDL outside contract, unsafe locks).

    Earlier phases are rendered too, so what they did (a new table, a validated
    CHECK) counts; the server's major version decides version-dependent rules.
    """
    from zdmigrate.lint import lint_migration

    pg_version = (
        int(ctx.conn.info.server_version) // 10000 if ctx.conn is not None else None
    )
    violations = lint_migration(
        ctx.migration, [ctx.target], pg_version=pg_version, config=ctx.settings.lint
    )
    return [
        Blocker(
            "lint",
            f"{v.location}: [{v.rule}] {v.message}",
            {"rule": v.rule, "path": v.path, "line": v.line, "phase": v.phase},
        )
        for v in violations
        if v.is_error
    ]


#: Every check that must pass before a migration enters a phase, in order.
#: Each returns the blockers it finds; an empty list means "go".
PHASE_CHECKS: list[PhaseCheck] = [
    check_previous_migrations,
    check_lint,
    check_backfill_verified,
    check_fleet,
    check_shadow_reads,
]


def blockers_for(ctx: CheckContext) -> list[Blocker]:
    found: list[Blocker] = []
    for check in PHASE_CHECKS:
        found.extend(check(ctx))
    return found


# -- results --------------------------------------------------------------------


@dataclass
class Transition:
    """One phase entered (or undone), or planned in a dry run."""

    migration_id: str
    action: str  # "advance" or "rollback"
    from_phase: Phase
    to_phase: Phase
    steps_run: int = 0
    steps_skipped: int = 0
    dry_run: bool = False
    steps: list[Step] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "migration": self.migration_id, "action": self.action,
            "from": self.from_phase.value, "to": self.to_phase.value,
            "steps_run": self.steps_run, "steps_skipped": self.steps_skipped,
            "dry_run": self.dry_run,
            "steps": [s.render() for s in self.steps] if self.dry_run else [],
        }


@dataclass
class MigrationStatus:
    id: str
    path: str
    kind: str
    phase: Phase
    next: Phase | None
    blocked_by: list[Blocker] = field(default_factory=list)
    backfills: list[dict[str, Any]] = field(default_factory=list)
    partial: list[dict[str, Any]] = field(default_factory=list)
    changed: bool = False
    #: Shadow reads the live app instances report for the current phase (runtime).
    shadow_reads: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "phase": self.phase.value,
            "next": self.next.value if self.next else None,
            "blocked_by": [b.as_dict() for b in self.blocked_by],
            "backfill": [
                {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in b.items()}
                for b in self.backfills
            ],
            "partial": self.partial,
            "changed": self.changed,
            "shadow_reads": shadow_reads.jsonable(self.shadow_reads) if self.shadow_reads else None,
            "kind": self.kind,
            "path": self.path,
        }


@dataclass
class PhasePlan:
    migration: Migration
    phase: Phase
    steps: list[Step]
    rollback: list[Step]


# -- the run --------------------------------------------------------------------


def default_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass
class _Run:
    conn: psycopg.Connection[Any]
    settings: Settings
    migrations: list[Migration]
    states: dict[str, state.MigrationRow]
    actor: str
    log: Log
    simulated: set[str] = field(default_factory=set)

    @property
    def schema(self) -> str:
        return self.settings.state_schema

    def phase_of(self, migration_id: str) -> Phase:
        row = self.states.get(migration_id)
        return row.phase if row else Phase.PENDING

    def reload(self) -> None:
        self.states = state.load_migrations(self.conn, self.schema)


@contextmanager
def _session(
    settings: Settings, command: str, *, lock: bool, log: Log,
    migrations: list[Migration] | None = None,
) -> Iterator[_Run]:
    """Load the migrations (bad files fail here, before any connection), connect, lock."""
    if migrations is None:
        migrations = load_migrations(settings.migrations)
    actor = settings.actor or default_actor()
    conn = db.connect(settings, application_name=f"zdmigrate {command}")
    try:
        if lock:
            holder = state.try_run_lock(conn, settings.state_schema)
            if holder is not None:
                raise RunLocked(
                    f"another zdmigrate run holds the lock on this database: {holder.describe()}",
                    hint="wait for it to finish; a killed run releases the lock at once",
                )
            state.ensure_schema(conn, settings.state_schema)
            state.record_lock_holder(conn, settings.state_schema, actor=actor, command=command)
        states = (
            state.load_migrations(conn, settings.state_schema)
            if state.schema_exists(conn, settings.state_schema) else {}
        )
        run = _Run(conn, settings, migrations, states, actor, log)
        try:
            yield run
        finally:
            if lock and not conn.closed and not conn.broken:
                state.release_run_lock(conn, settings.state_schema)
    except psycopg.errors.InsufficientPrivilege as exc:
        # zdmigrate's own state (or what a gate reads) is out of reach: what phase a
        # migration stands in cannot be known, so nothing may move
        reason = str(exc).strip().splitlines()[0]
        raise OperationalError(
            f"{command}: the database role {conn.info.user!r} may not read or write what "
            f"zdmigrate needs: {reason}",
            hint=f"grant the role USAGE on schema {settings.state_schema} and SELECT, INSERT, "
            "UPDATE, DELETE on its tables, then run the command again",
        ) from None
    finally:
        conn.close()


def advance(
    settings: Settings,
    migration_id: str | None = None,
    *,
    to: Phase | str | None = None,
    dry_run: bool = False,
    accept_changed: bool = False,
    override_reason: str | None = None,
    log: Log = _quiet,
) -> list[Transition]:
    """Take a migration (default: the oldest not complete) through its next phase(s).

    Without `to`, it goes up to the next phase that has work to do, passing the
    empty phases before it (their gates still apply); a plain Alembic revision
    thus goes from pending to complete in one call.

    Raises PhaseRefused (exit 1) when a gate says no; phases entered before the
    refusal stay entered. With `dry_run`, shows the steps and checks the gates of
    each phase without changing anything.
    """
    target_phase = Phase.parse(to) if isinstance(to, str) else to
    if target_phase is Phase.PENDING:
        raise BadInput("advance --to pending makes no sense; use `phase rollback --to pending`")
    migrations = _validated(settings, migration_id)
    with _session(settings, "phase advance", lock=not dry_run, log=log,
                  migrations=migrations) as run:
        if migration_id is not None:
            migration = find(run.migrations, migration_id)
        else:
            pending = [m for m in run.migrations if not run.phase_of(m.id).is_complete]
            if not pending:
                log("every migration is complete; nothing to do")
                return []
            migration = pending[0]
        current = run.phase_of(migration.id)
        goal = target_phase or _next_with_work(migration, current)
        if goal is None or goal <= current:
            log(f"{migration.id} is already at {current}; nothing to do")
            return []
        _check_unchanged(run, migration, accept_changed)
        transitions = []
        for phase in phases_between(current, goal):
            transitions.append(
                _enter(run, migration, phase, dry_run=dry_run, accept_changed=accept_changed,
                       override_reason=override_reason)
            )
        return transitions


def _validated(settings: Settings, migration_id: str | None) -> list[Migration]:
    """Load the migrations and check the arguments before touching the database."""
    migrations = load_migrations(settings.migrations)
    if migration_id is not None:
        find(migrations, migration_id)
    return migrations


def _next_with_work(migration: Migration, current: Phase) -> Phase | None:
    """The next phase that does work, or contract when no phase after that one does.

    Empty phases on the way are passed (their gates still apply), so a plain
    Alembic revision goes from pending to complete in one call.
    """
    ahead = phases_between(current, Phase.CONTRACT)
    with_work = [p for p in ahead if migration.defines(p)]
    if len(with_work) <= 1:
        return Phase.CONTRACT if ahead else None
    return with_work[0]


def _enter(
    run: _Run, migration: Migration, phase: Phase, *, dry_run: bool, accept_changed: bool,
    override_reason: str | None,
) -> Transition:
    before = run.phase_of(migration.id)
    ctx = CheckContext(
        run.conn, run.settings, migration, run.migrations, run.states, phase, run.actor,
        override_reason, simulated=migration.id in run.simulated,
    )
    blockers = blockers_for(ctx)
    overridden: list[Blocker] = []
    if override_reason:
        # --override-fleet-check lifts the fleet checks only; the log keeps what it lifted
        overridden = [b for b in blockers if b.check in fleet.FLEET_CHECKS]
        blockers = [b for b in blockers if b.check not in fleet.FLEET_CHECKS]
        for b in overridden:
            run.log(f"{migration.id}: overriding [{b.check}] ({override_reason}): {b.message}")
    if blockers:
        if not dry_run:
            with run.conn.transaction():
                state.log_start(
                    run.conn, run.schema, migration_id=migration.id, action="advance",
                    from_phase=before, to_phase=phase, actor=run.actor, outcome="refused",
                    override_reason=override_reason,
                    message="; ".join(f"[{b.check}] {b.message}" for b in blockers),
                )
        raise PhaseRefused(f"{migration.id}: cannot enter {phase}", blockers)
    if dry_run:
        steps = migration.render(phase)
        run.log(f"{migration.id}: would enter {phase} ({len(steps)} step(s))")
        # later phases of this dry run see this one as entered
        run.states[migration.id] = state.MigrationRow(migration.id, phase, migration.checksum, None)
        run.simulated.add(migration.id)
        return Transition(migration.id, "advance", before, phase, dry_run=True, steps=steps)
    if phase is Phase.EXPAND and before is Phase.PENDING:
        _check_requirements(run, migration)
    with run.conn.transaction():
        log_id = state.log_start(
            run.conn, run.schema, migration_id=migration.id, action="advance",
            from_phase=before, to_phase=phase, actor=run.actor, override_reason=override_reason,
            message=(
                "overridden: " + "; ".join(f"[{b.check}] {b.message}" for b in overridden)
                if overridden else None
            ),
        )
        run.conn.execute(
            sql.SQL("INSERT INTO {} (id, phase, checksum) VALUES (%s, 'pending', %s) "
                    "ON CONFLICT (id) DO NOTHING").format(state.table(run.schema, "migrations")),
            [migration.id, migration.checksum],
        )
    run.log(f"{migration.id}: entering {phase}")
    transition = Transition(migration.id, "advance", before, phase)
    _run_logged(run, migration, phase, "advance", transition, log_id, accept_changed)
    with run.conn.transaction():
        state.set_phase(run.conn, run.schema, migration.id, phase, migration.checksum)
        state.clear_steps(run.conn, run.schema, migration.id, [phase], "advance")
        state.log_finish(run.conn, run.schema, log_id, "done")
        state.notify_phase(run.conn, run.schema, migration.id, phase)
    run.reload()
    run.log(
        f"{migration.id}: {phase} done ({transition.steps_run} step(s) run"
        + (f", {transition.steps_skipped} already done" if transition.steps_skipped else "")
        + ")"
    )
    return transition


def _run_logged(
    run: _Run, migration: Migration, phase: Phase, direction: str, transition: Transition,
    log_id: int, accept_changed: bool,
) -> None:
    """Run the steps; on any failure mark the phase log entry failed, then re-raise."""
    try:
        _run_steps(run, migration, phase, direction, transition, accept_changed)
    except BaseException as exc:
        _log_failure(run, log_id, exc)
        raise


def _log_failure(run: _Run, log_id: int, exc: BaseException) -> None:
    if run.conn.closed or run.conn.broken:
        return
    try:
        with run.conn.transaction():
            state.log_finish(run.conn, run.schema, log_id, "failed", str(exc)[:2000])
    except psycopg.Error:
        pass


def _run_steps(
    run: _Run, migration: Migration, phase: Phase, direction: str, transition: Transition,
    accept_changed: bool,
) -> None:
    done = state.done_steps(run.conn, run.schema, migration.id, phase, direction)
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

        def record(conn: psycopg.Connection[Any]) -> None:
            state.mark_step_done(conn, run.schema, migration.id, phase, direction, index, step.key)

        if isinstance(step, SQLStep):
            run.log(f"  {phase} step {index + 1}: {_one_line(step.sql)}")
            db.execute_step(run.conn, step, run.settings, record=record, log=run.log)
        elif isinstance(step, GeneratedSQLStep):
            run.log(f"  {phase} step {index + 1}: {step.description}")
            for statement in db.generated_statements(run.conn, step):
                run.log(f"    {_one_line(statement.sql)}")
                db.execute_step(run.conn, statement, run.settings, log=run.log)
            with run.conn.transaction():
                record(run.conn)
        else:
            if direction == "advance":
                run.log(f"  {phase} step {index + 1}: backfill {step.qualified_table}")
                result = backfill.run_backfill(
                    run.settings, migration_id=migration.id, step=step,
                    reporter=backfill.PlainReporter(write=run.log),
                )
                if not result.done:
                    raise OperationalError(
                        f"backfill of {step.qualified_table} {result.status} before the end",
                        hint=f"resume it with `zdmigrate backfill {migration.id}`",
                    )
                run.log(f"  backfilled {result.rows_done} row(s) of {step.qualified_table}")
            with run.conn.transaction():
                record(run.conn)
        transition.steps_run += 1

    migration.emit(phase, direction, execute)


def _check_requirements(run: _Run, migration: Migration) -> None:
    """Check every operation's requirements against the live schema; exit 2 if any is unmet.

    All of it runs in one transaction that is rolled back, so nothing changes.
    Operation i is checked after the transactional expand steps of operations
    0..i-1 ran in that transaction, so it may use what they create (a table and
    then an index on it). Skipped when expand already started: an interrupted run
    changed the schema the requirements describe.
    """
    if state.done_steps(run.conn, run.schema, migration.id, Phase.EXPAND, "advance"):
        return
    problems: list[str] = []
    with run.conn.transaction(force_rollback=True):
        run.conn.execute(
            "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
            [f"{int(run.settings.lock_timeout * 1000)}ms", "30s"],
        )
        for op in migration.operations:
            for requirement in op.requirements():
                problem = _requirement_problem(run.conn, requirement)
                if problem is not None:
                    problems.append(f"{op.describe()}: {problem}")
            for step in op.steps(Phase.EXPAND, migration.id):
                if isinstance(step, SQLStep) and not step.autocommit:
                    try:
                        with run.conn.transaction():  # a savepoint
                            run.conn.execute(step.sql.encode(), step.params)
                    except psycopg.Error:
                        pass  # its own requirements said why, or the real run will
    if problems:
        raise OperationInvalid(
            f"{migration.path}: the operations of {migration.id} do not fit the live schema; "
            "nothing was changed",
            problems,
        )


def _requirement_problem(conn: psycopg.Connection[Any], requirement: Requirement) -> str | None:
    """None when the requirement holds, else what is wrong (run in a savepoint)."""
    try:
        with conn.transaction():
            cursor = conn.execute(requirement.sql.encode(), requirement.params)
            if requirement.expect == "true":
                row = cursor.fetchone()
                if not row or row[0] is not True:
                    return requirement.problem
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{requirement.problem} ({first})"
    return None


def _check_unchanged(run: _Run, migration: Migration, accept_changed: bool) -> None:
    row = run.states.get(migration.id)
    if row is None or row.checksum is None or row.checksum == migration.checksum:
        return
    if not accept_changed:
        raise MigrationChanged(
            f"{migration.path}: the file changed after its phases started "
            f"(it is at {row.phase}; checksum {row.checksum[:12]} then, "
            f"{migration.checksum[:12]} now)",
            hint="revert the change (write a new migration instead), or pass --accept-changed "
            "if the change cannot affect what already ran",
        )
    run.log(f"{migration.id}: accepting the changed file (--accept-changed)")
    with run.conn.transaction():
        state.set_checksum(run.conn, run.schema, migration.id, migration.checksum)


def rollback(
    settings: Settings,
    migration_id: str | None = None,
    *,
    to: Phase | str | None = None,
    accept_changed: bool = False,
    log: Log = _quiet,
) -> list[Transition]:
    """Undo phases of a migration (default: the newest one started), newest phase first.

    Contract is the point of no return: a complete migration is never rolled back.
    A phase that was interrupted half-way is undone first.
    """
    target_phase = Phase.parse(to) if isinstance(to, str) else to
    migrations = _validated(settings, migration_id)
    with _session(settings, "phase rollback", lock=True, log=log, migrations=migrations) as run:
        if migration_id is not None:
            migration = find(run.migrations, migration_id)
        else:
            started = [
                m for m in run.migrations
                if run.phase_of(m.id) is not Phase.PENDING
                or state.partial_phases(run.conn, run.schema, m.id)
            ]
            if not started:
                log("no migration has started; nothing to roll back")
                return []
            migration = started[-1]
        current = run.phase_of(migration.id)
        if current is Phase.CONTRACT:
            raise PhaseRefused(
                f"{migration.id} is complete: contract is the point of no return",
                hint="write a new migration that brings back what you need",
            )
        goal = target_phase if target_phase is not None else (current.previous or Phase.PENDING)
        if goal > current:
            raise BadInput(f"{migration.id} is at {current}; cannot roll back to {goal}, a later phase")
        _check_unchanged(run, migration, accept_changed)
        refusals = [
            Blocker("later-migration",
                    f"{child.id} is at {run.phase_of(child.id)}; roll it back to {goal} first",
                    {"migration": child.id})
            for child in children_of(migration, run.migrations)
            if run.phase_of(child.id) > goal
        ]
        phases = [p for p in reversed(phases_between(goal, current))]
        refusals += [
            Blocker("no-rollback",
                    f"{migration.path.name} defines {phase.function_name}() but no "
                    f"rollback_{phase.function_name}(); write one to roll this phase back")
            for phase in phases if not migration.can_roll_back(phase)
        ]
        partial = [
            p for p, direction, _ in state.partial_phases(run.conn, run.schema, migration.id)
            if direction == "advance" and p > current
        ]
        if refusals:
            raise PhaseRefused(f"{migration.id}: cannot roll back to {goal}", refusals)
        transitions = []
        for phase in sorted(partial, reverse=True):
            run.log(f"{migration.id}: undoing the interrupted {phase}")
            transitions.append(_undo(run, migration, phase, accept_changed, interrupted=True))
        for phase in phases:
            transitions.append(_undo(run, migration, phase, accept_changed, interrupted=False))
        if not transitions:
            log(f"{migration.id} is at {current}; nothing to roll back")
        return transitions


def _undo(
    run: _Run, migration: Migration, phase: Phase, accept_changed: bool, *, interrupted: bool
) -> Transition:
    before = run.phase_of(migration.id)
    after = before if interrupted else (phase.previous or Phase.PENDING)
    with run.conn.transaction():
        log_id = state.log_start(
            run.conn, run.schema, migration_id=migration.id, action="rollback",
            from_phase=phase if not interrupted else before, to_phase=after, actor=run.actor,
            message="undoing an interrupted phase" if interrupted else None,
        )
    run.log(f"{migration.id}: rolling back {phase}")
    transition = Transition(migration.id, "rollback", phase, after)
    _run_logged(run, migration, phase, "rollback", transition, log_id, accept_changed)
    with run.conn.transaction():
        state.set_phase(run.conn, run.schema, migration.id, after, migration.checksum)
        state.clear_steps(run.conn, run.schema, migration.id, [phase])
        if phase is Phase.BACKFILL:
            run.conn.execute(
                sql.SQL("DELETE FROM {} WHERE migration_id = %s").format(
                    state.table(run.schema, "backfills")
                ),
                [migration.id],
            )
        state.log_finish(run.conn, run.schema, log_id, "done")
        state.notify_phase(run.conn, run.schema, migration.id, after)
    run.reload()
    run.log(f"{migration.id}: now at {after}")
    return transition


def adopt(
    settings: Settings, revision: str | None = None, *, log: Log = _quiet
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
    with _session(settings, "adopt", lock=True, log=log, migrations=migrations) as run:
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


def status(settings: Settings, *, log: Log = _quiet) -> list[MigrationStatus]:
    """Each migration: its phase, the next one, what blocks it, backfill progress.

    Reads only; a database that zdmigrate never touched shows every migration pending.
    """
    with _session(settings, "status", lock=False, log=log) as run:
        has_schema = state.schema_exists(run.conn, run.schema)
        progress = state.backfill_progress(run.conn, run.schema) if has_schema else []
        out = []
        for migration in run.migrations:
            current = run.phase_of(migration.id)
            nxt = current.next
            row = run.states.get(migration.id)
            changed = bool(row and row.checksum and row.checksum != migration.checksum)
            blockers: list[Blocker] = []
            if changed:
                blockers.append(Blocker("file-changed", f"{migration.path.name} changed after its "
                                        "phases started; revert it or pass --accept-changed"))
            if nxt is not None:
                ctx = CheckContext(run.conn, settings, migration, run.migrations, run.states, nxt,
                                   run.actor)
                blockers.extend(blockers_for(ctx))
            partial = (
                [{"phase": p.value, "direction": d, "steps_done": n}
                 for p, d, n in state.partial_phases(run.conn, run.schema, migration.id)]
                if has_schema else []
            )
            out.append(MigrationStatus(
                migration.id, str(migration.path), migration.kind, current, nxt, blockers,
                [b for b in progress if b["migration_id"] == migration.id], partial, changed,
                shadow_reads.counts(run.conn, run.schema, migration.id, current)
                if has_schema else None,
            ))
        return out


def plan(settings: Settings, migration_id: str | None = None) -> list[PhasePlan]:
    """The steps of every phase (and of its rollback), rendered offline: no database."""
    migrations = load_migrations(settings.migrations)
    chosen = [find(migrations, migration_id)] if migration_id else migrations
    plans = []
    for migration in chosen:
        for phase in phases_between(Phase.PENDING, Phase.CONTRACT):
            plans.append(PhasePlan(
                migration, phase, migration.render(phase),
                migration.render(phase, "rollback") if migration.can_roll_back(phase) else [],
            ))
    return plans


def _one_line(text: str, limit: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
