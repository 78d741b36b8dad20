"""`phase advance`: take a migration through its next phase(s) once every gate check passes.

Each phase: check the gates (`checks.PHASE_CHECKS`), run its steps one by one
(each recorded when done, so a killed run resumes where it stopped), then record
the new phase, log it and NOTIFY listeners, all in one transaction.

Warning: holds the run's advisory lock for the whole run; DDL steps take table
locks only for their own short transaction, bounded by lock_timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from zdmigrate import compat
from zdmigrate.backfill import Reporter
from zdmigrate.config import Settings
from zdmigrate.engine.adoption import move_alembic_version
from zdmigrate.engine.checks import CheckContext, blockers_for
from zdmigrate.engine.executors import run_logged
from zdmigrate.engine.results import Transition
from zdmigrate.engine.selection import default_migration
from zdmigrate.engine.session import Log, Run, check_unchanged, quiet, session, validated
from zdmigrate.errors import BadInput, Blocker, OperationInvalid, PhaseRefused, first_line
from zdmigrate.failpoints import failpoint
from zdmigrate.migration import Migration, find
from zdmigrate.ops import _requirements as req
from zdmigrate.ops import _version_schema as version_schema
from zdmigrate.ops.base import Requirement
from zdmigrate.phases import Phase, phases_between
from zdmigrate.state import MigrationRow
from zdmigrate.steps import SQLStep

if TYPE_CHECKING:
    from zdmigrate.fleet import Instance


def advance(
    settings: Settings,
    migration_id: str | None = None,
    *,
    to: Phase | str | None = None,
    dry_run: bool = False,
    accept_changed: bool = False,
    override_reason: str | None = None,
    log: Log = quiet,
    fleet_instances: Callable[[], Sequence[Instance]] | None = None,
    migrations: list[Migration] | None = None,
    reporter: Reporter | None = None,
) -> list[Transition]:
    """Take a migration (default: the oldest not complete) through its next phase(s).

    Without `to`, it goes up to the next phase that has work to do, passing the
    empty phases before it (their gates still apply); a plain Alembic revision
    thus goes from pending to complete in one call.

    Raises PhaseRefused (exit 1) when a gate says no; phases entered before the
    refusal stay entered, and the error's `done` lists their transitions. With `dry_run`, shows the steps and checks the gates of
    each phase without changing anything. A backfill step's progress events go to
    `reporter` (the CLI draws them as log lines: `zdmigrate.output.progress`).
    `migrations`, when given, are the loaded migration files (a run across many
    databases loads them once).
    `fleet_instances`, when this database is one target of several, gives the whole
    set's live instances to the fleet check (`fleet.SharedFleet`): contract waits
    while any target has an old instance.

        advance(Settings.load({"database_url": url}), "0002_rename", to="expand")
    """
    target_phase = Phase.parse(to) if isinstance(to, str) else to
    if target_phase is Phase.PENDING:
        raise BadInput("advance --to pending makes no sense; use `phase rollback --to pending`")
    if migrations is None:
        migrations = validated(settings, migration_id)
    with session(settings, "phase advance", lock=not dry_run, log=log,
                 migrations=migrations, defer_state=True) as run:
        run.backfill_reporter = reporter
        if migration_id is not None:
            migration = find(run.migrations, migration_id)
        else:
            chosen = default_migration(run.migrations, run.phase_of, "advance")
            if chosen is None:
                log("every migration is complete")
                return []
            migration = chosen
        current = run.phase_of(migration.id)
        goal = target_phase or next_with_work(migration, current)
        if goal is None or goal <= current:
            log(f"{migration.id} is already at {current}")
            return []
        check_unchanged(run, migration, accept_changed)
        transitions: list[Transition] = []
        for phase in phases_between(current, goal):
            try:
                transitions.append(
                    _enter(run, migration, phase, dry_run=dry_run, accept_changed=accept_changed,
                           override_reason=override_reason, fleet_instances=fleet_instances)
                )
            except PhaseRefused as refused:
                refused.done = list(transitions)  # what moved before the refusal: report it too
                raise
        return transitions


def next_with_work(migration: Migration, current: Phase) -> Phase | None:
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
    run: Run, migration: Migration, phase: Phase, *, dry_run: bool, accept_changed: bool,
    override_reason: str | None,
    fleet_instances: Callable[[], Sequence[Instance]] | None = None,
) -> Transition:
    before = run.phase_of(migration.id)
    ctx = CheckContext(
        run.conn, run.settings, migration, run.migrations, run.states, phase, run.actor,
        override_reason, simulated=migration.id in run.simulated,
        fleet_instances=fleet_instances,
    )
    blockers = blockers_for(ctx)
    overridden: list[Blocker] = []
    if override_reason:
        # --override-fleet-check lifts the fleet checks only; the log keeps what it lifted
        overridden = [b for b in blockers if b.check in compat.FLEET_CHECKS]
        blockers = [b for b in blockers if b.check not in compat.FLEET_CHECKS]
        for b in overridden:
            run.log(f"{migration.id}: overriding [{b.check}] ({override_reason}): {b.message}")
    if blockers:
        if not dry_run:
            run.ensure_state()
            with run.conn.transaction():
                run.store.phase_log.start(
                    migration_id=migration.id, action="advance",
                    from_phase=before, to_phase=phase, actor=run.actor, outcome="refused",
                    override_reason=override_reason,
                    message="; ".join(f"[{b.check}] {b.message}" for b in blockers),
                )
        raise PhaseRefused(f"{migration.id}: cannot enter {phase}", blockers)
    if dry_run:
        steps = migration.render(phase)
        run.log(f"{migration.id}: would enter {phase} ({len(steps)} step(s))")
        # later phases of this dry run see this one as entered
        run.states[migration.id] = MigrationRow(migration.id, phase, migration.checksum, None)
        run.simulated.add(migration.id)
        return Transition(migration.id, "advance", before, phase, dry_run=True, steps=steps)
    if phase is Phase.EXPAND and before is Phase.PENDING:
        _check_requirements(run, migration)
    if phase is Phase.CONTRACT:
        _check_contract_requirements(run, migration)
    run.ensure_state()
    with run.conn.transaction():
        log_id = run.store.phase_log.start(
            migration_id=migration.id, action="advance",
            from_phase=before, to_phase=phase, actor=run.actor, override_reason=override_reason,
            message=(
                "overridden: " + "; ".join(f"[{b.check}] {b.message}" for b in overridden)
                if overridden else None
            ),
        )
        run.store.migrations.add_pending(migration.id, migration.checksum)
    run.log(f"{migration.id}: entering {phase}")
    transition = Transition(migration.id, "advance", before, phase)
    run_logged(run, migration, phase, "advance", transition, log_id, accept_changed)
    with run.conn.transaction():
        run.store.migrations.set_phase(migration.id, phase, migration.checksum)
        run.store.steps.clear(migration.id, [phase], "advance")
        run.store.phase_log.finish(log_id, "done")
        run.store.migrations.notify_phase(migration.id, phase)
        if phase is Phase.CONTRACT:
            moved = move_alembic_version(
                run.conn, run.migrations,
                lambda mid: mid == migration.id or run.phase_of(mid) is Phase.CONTRACT)
            if moved:
                run.log(f"{migration.id}: alembic_version now {moved}")
        failpoint("engine.phase.before_commit")
    failpoint("engine.phase.after_commit")
    run.reload()
    run.log(
        f"{migration.id}: {phase} done ({transition.steps_run} step(s) run"
        + (f", {transition.steps_skipped} already done" if transition.steps_skipped else "")
        + ")"
    )
    return transition


def _check_requirements(run: Run, migration: Migration) -> None:
    """Check every operation's requirements against the live schema; exit 2 if any is unmet.

    Nothing changes: every check runs in a transaction that is rolled back. Each
    operation is checked in a short transaction of its own that only reads, so the
    checks take no lock the application waits on. A requirement unmet there may
    depend on what an earlier operation of the migration creates (a table, then an
    index on it): only then is it checked again after the transactional expand
    steps of the earlier operations are replayed, and that transaction, which holds
    their locks, is cut off at lock_timeout (what it could not check in time, the
    real run will report). Skipped when a step of expand was started or done: an
    interrupted or failed run changed the schema the requirements describe, and the
    steps themselves recognise what it left (see `db.execute_step`).
    """
    if run.state_ready and (
        run.store.steps.done(migration.id, Phase.EXPAND, "advance")
        or run.store.steps.started(migration.id, Phase.EXPAND, "advance")
    ):
        return
    problems: list[str] = []
    replay: list[SQLStep] = []
    for op in migration.operations:
        claims = list(op.claims(migration.id))
        # generated names are checked on the schema as it is: after a replay they would
        # meet what an earlier operation of this migration creates under the same name
        names = [req.names_free(claims, op.describe())] if claims else []
        unmet = _unmet(run, [*op.requirements(), *names], [])
        taken = [(r, p) for r, p in unmet if r in names]
        unmet = [(r, p) for r, p in unmet if r not in names]
        if unmet and replay:
            again = [r for i, (r, _) in enumerate(unmet) if all(r is not q for q, _ in unmet[:i])]
            unmet = _unmet(run, again, replay)
        problems.extend(f"{op.describe()}: {problem}" for _, problem in [*unmet, *taken])
        replay.extend(
            step for step in op.steps(Phase.EXPAND, migration.id)
            if isinstance(step, SQLStep) and not step.autocommit
        )
    problems.extend(problem for _, problem in _unmet(run, migration.view_requirements(), []))
    if migration.version_schema:
        # the opt-in version schema is generated too: someone else's schema of that name is refused
        taken_schema = [req.names_free([version_schema.schema_claim(migration.id)],
                                       f"version schema of {migration.id}")]
        problems.extend(f"version schema of {migration.id}: {problem}"
                        for _, problem in _unmet(run, taken_schema, []))
    if problems:
        raise OperationInvalid(
            f"{migration.path}: the operations of {migration.id} do not fit the live schema; "
            "nothing was changed",
            problems,
        )


def _unmet(
    run: Run, requirements: Sequence[Requirement], replay: list[SQLStep]
) -> list[tuple[Requirement, str]]:
    """The requirements that do not hold, each with what is wrong, in one rolled-back transaction.

    With `replay`, those statements run first and everything after the first lock
    they take must end within lock_timeout; what is left unchecked then counts as met.
    """
    if not requirements:
        return []
    limit = run.settings.lock_timeout
    deadline = time.monotonic() + limit
    unmet: list[tuple[Requirement, str]] = []
    with run.conn.transaction(force_rollback=True):
        run.conn.execute(
            "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
            [f"{max(1, int(limit * 1000))}ms", "30s"],
        )

        def within_deadline() -> bool:
            left = deadline - time.monotonic()
            if left <= 0.001:
                return False
            run.conn.execute("SELECT set_config('statement_timeout', %s, true)",
                             [f"{int(left * 1000)}ms"])
            return True

        for step in replay:
            if not within_deadline():
                return []
            try:
                with run.conn.transaction():  # a savepoint
                    run.conn.execute(step.sql.encode(), step.params)
            except psycopg.errors.QueryCanceled:
                return []
            except psycopg.Error:
                pass  # its own requirements said why, or the real run will
        for requirement in requirements:
            if replay and not within_deadline():
                break
            found = _requirement_problems(run.conn, requirement)
            if replay and time.monotonic() >= deadline:
                break  # cancelled at the deadline: not checked
            unmet.extend((requirement, problem) for problem in found)
    return unmet


def _check_contract_requirements(run: Run, migration: Migration) -> None:
    """Before contract's first step, check what every operation needs (exit 2 if unmet).

    E.g. that nothing else uses a column about to be dropped: so contract runs
    whole or not at all, instead of stopping half-way with old versions broken.
    Run in a transaction that is rolled back. Skipped once contract started (its
    done steps changed what the requirements describe; each operation's own
    first step checks again).
    """
    if run.store.steps.done(migration.id, Phase.CONTRACT, "advance"):
        return
    problems: list[str] = []
    with run.conn.transaction(force_rollback=True):
        run.conn.execute(
            "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
            [f"{int(run.settings.lock_timeout * 1000)}ms", "30s"],
        )
        for op in migration.operations:
            for requirement in op.contract_requirements(migration.id):
                problems.extend(f"{op.describe()}: {problem}"
                                for problem in _requirement_problems(run.conn, requirement))
    if problems:
        raise OperationInvalid(
            f"{migration.path}: contract of {migration.id} cannot run yet; nothing was changed",
            problems, hint="fix what is listed (old app versions keep working), then run it again",
        )


def _requirement_problems(conn: psycopg.Connection[Any], requirement: Requirement) -> list[str]:
    """What is wrong, none when the requirement holds (run in a savepoint)."""
    try:
        with conn.transaction():
            cursor = conn.execute(requirement.sql.encode(), requirement.params)
            if requirement.expect == "clear":
                return [str(row[0]) for row in cursor.fetchall()]
            if requirement.expect == "true":
                row = cursor.fetchone()
                if not row or row[0] is not True:
                    return [requirement.problem]
    except psycopg.Error as exc:
        return [f"{requirement.problem} ({first_line(exc)})"]
    return []
