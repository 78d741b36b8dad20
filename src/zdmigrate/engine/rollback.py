"""`phase rollback`: undo phases of a migration, newest first, never past contract.

Warning: holds the run's advisory lock for the whole run, as advance does.
"""

from __future__ import annotations

from zdmigrate.config import Settings
from zdmigrate.engine.executors import run_logged
from zdmigrate.engine.results import Transition
from zdmigrate.engine.selection import default_migration
from zdmigrate.engine.session import Log, Run, check_unchanged, quiet, session, validated
from zdmigrate.errors import BadInput, Blocker, PhaseRefused
from zdmigrate.migration import Migration, children_of, find
from zdmigrate.phases import Phase, phases_between


def rollback(
    settings: Settings,
    migration_id: str | None = None,
    *,
    to: Phase | str | None = None,
    accept_changed: bool = False,
    log: Log = quiet,
    migrations: list[Migration] | None = None,
) -> list[Transition]:
    """Undo phases of a migration (default: the newest one started), newest phase first.

    Contract is the point of no return: a complete migration is never rolled back.
    A phase that was interrupted half-way is undone first. `migrations`, when
    given, are the loaded migration files.
    """
    target_phase = Phase.parse(to) if isinstance(to, str) else to
    if migrations is None:
        migrations = validated(settings, migration_id)
    with session(settings, "phase rollback", lock=True, log=log, migrations=migrations) as run:
        if migration_id is not None:
            migration = find(run.migrations, migration_id)
        else:
            chosen = default_migration(
                run.migrations, run.phase_of, "rollback",
                interrupted=lambda mid: bool(run.store.steps.partial_phases(mid)),
            )
            if chosen is None:
                log("no migration has started; nothing to roll back")
                return []
            migration = chosen
        current = run.phase_of(migration.id)
        if current is Phase.CONTRACT:
            raise PhaseRefused(
                f"{migration.id} is complete: contract is the point of no return",
                hint="write a new migration that brings back what you need",
            )
        goal = target_phase if target_phase is not None else (current.previous or Phase.PENDING)
        if goal > current:
            raise BadInput(f"{migration.id} is at {current}; cannot roll back to {goal}, a later phase")
        check_unchanged(run, migration, accept_changed)
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
        interrupted = [
            (p, done) for p, direction, done
            in run.store.steps.partial_phases(migration.id)
            if direction == "advance" and p > current
        ]
        _refuse_what_cannot_be_undone(migration, interrupted)
        partial = [p for p, _ in interrupted]
        if goal < Phase.BACKFILL:
            refusals += _running_backfill(run, migration)
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


def _refuse_what_cannot_be_undone(migration: Migration, interrupted: list[tuple[Phase, int]]) -> None:
    """A phase is undone only by undoing the steps that ran: refuse (exit 2) when they cannot be.

    An interrupted contract never can (it dropped what it dropped); recording it
    as undone would leave the migration at a phase whose objects are gone.
    """
    for phase, done in sorted(interrupted, reverse=True):
        if migration.can_roll_back(phase):
            continue
        if phase is Phase.CONTRACT:
            raise BadInput(
                f"{migration.id}: contract was interrupted after {done} step(s), and contract "
                "cannot be undone (it is the point of no return); nothing was changed",
                hint=f"finish it: `zdmigrate phase advance {migration.id} --to contract` runs "
                "the steps not done yet and keeps those done; if a step fails on the data, fix "
                "the data and run it again",
            )
        raise BadInput(
            f"{migration.id}: {phase} was interrupted after {done} step(s), and "
            f"{migration.path.name} defines no rollback_{phase.function_name}() to undo them; "
            "nothing was changed",
            hint=f"write rollback_{phase.function_name}(), or finish the phase: "
            f"`zdmigrate phase advance {migration.id} --to {phase}`",
        )


def _undo(
    run: Run, migration: Migration, phase: Phase, accept_changed: bool, *, interrupted: bool
) -> Transition:
    before = run.phase_of(migration.id)
    after = before if interrupted else (phase.previous or Phase.PENDING)
    with run.conn.transaction():
        log_id = run.store.phase_log.start(
            migration_id=migration.id, action="rollback",
            from_phase=phase if not interrupted else before, to_phase=after, actor=run.actor,
            message="undoing an interrupted phase" if interrupted else None,
        )
    run.log(f"{migration.id}: rolling back {phase}")
    transition = Transition(migration.id, "rollback", phase, after)
    run_logged(run, migration, phase, "rollback", transition, log_id, accept_changed)
    with run.conn.transaction():
        run.store.migrations.set_phase(migration.id, after, migration.checksum)
        run.store.steps.clear(migration.id, [phase])
        if after < Phase.BACKFILL:
            # whatever a backfill recorded is about data this rollback may undo (a
            # dropped column, a trigger gone): the next backfill starts from the top
            run.store.backfills.delete_migration(migration.id)
        run.store.phase_log.finish(log_id, "done")
        run.store.migrations.notify_phase(migration.id, after)
    run.reload()
    run.log(f"{migration.id}: now at {after}")
    return transition


def _running_backfill(run: Run, migration: Migration) -> list[Blocker]:
    """A backfill whose workers are connected now: rolling back under it would kill it
    half-way and leave a cursor that no longer describes the data."""
    workers = run.store.backfills.connected_workers(migration.id)
    if not workers:
        return []
    pids = sorted({int(w["pid"]) for w in workers})
    return [Blocker(
        "backfill-running",
        f"a backfill of {migration.id} is running ({len(pids)} worker connection(s), "
        f"backend pid {', '.join(map(str, pids))}); pause it with "
        f"`zdmigrate backfill {migration.id} --pause` and wait until its workers stop, "
        "then roll back",
        {"pids": pids},
    )]
