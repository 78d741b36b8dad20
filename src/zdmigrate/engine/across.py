"""`phase advance` and `phase rollback` across targets: one phase on many databases, in step.

Every selected target is probed first (connect, read zdmigrate's schema); one
that cannot be reached stops the command before anything changes (exit 3).
Then one migration and one goal phase are chosen for the whole set, and each
target runs the single-database command (`advance`, `rollback`) in a thread of
its own, at most `parallel` at once: its own connection, run lock, lock_timeout,
retries and recorded steps. A target that fails stops where it is; the others
finish. The next run finds the targets at the goal with nothing to do.

    run = advance_across(settings, load_targets(settings), AcrossOptions(to="expand", parallel=8))
    run.exit_code, [r.outcome for r in run.results]

Warning: each target holds its own run lock while its phase runs; a second run
across the same targets is refused target by target (RunLocked, exit 3).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg

from zdmigrate import db, dsn, state
from zdmigrate.backfill import Reporter
from zdmigrate.config import Settings
from zdmigrate.engine.advance import advance, next_with_work
from zdmigrate.engine.results import AcrossRun, SkippedTarget, TargetResult, Transition
from zdmigrate.engine.rollback import rollback
from zdmigrate.engine.session import Log, default_actor, quiet, validated
from zdmigrate.errors import (
    EXIT_OPERATIONAL,
    BadInput,
    OperationalError,
    PhaseRefused,
    ZdmigrateError,
    first_line,
)
from zdmigrate.fleet import SharedFleet
from zdmigrate.migration import Migration, find
from zdmigrate.phases import Phase
from zdmigrate.targets import Target, each_target, load_targets


class TargetsUnreachable(OperationalError):
    """Some targets could not be reached (or read) before the run: nothing was done anywhere."""

    def __init__(self, problems: Sequence[tuple[Target, str]], total: int) -> None:
        names = ", ".join(t.name for t, _ in problems)
        super().__init__(
            f"{len(problems)} of {total} target(s) cannot be reached: {names}; "
            "nothing was done on any target\n"
            + "\n".join(f"  - {t.name}: {why}" for t, why in problems),
            hint="bring them back and run again, or leave a decommissioned one out on purpose: "
            "--skip-target NAME --reason TEXT",
        )
        self.problems = [(t.name, why) for t, why in problems]


@dataclass
class Probe:
    """A target reached before the run: each migration's recorded phase there."""

    target: Target
    phases: dict[str, Phase] = field(default_factory=dict)
    #: Migrations with a phase started and not finished there.
    interrupted: set[str] = field(default_factory=set)

    def phase_of(self, migration_id: str) -> Phase:
        return self.phases.get(migration_id, Phase.PENDING)


def probe(
    settings: Settings, targets: Sequence[Target], *, parallel: int, log: Log = quiet
) -> list[Probe]:
    """Connect to every target and read its zdmigrate schema (if any), `parallel` at once.

    Raises TargetsUnreachable (exit 3) naming every target that failed, and why.
    """
    def one(target: Target) -> Probe | str:
        try:
            conn = db.connect(target.settings(settings), application_name="zdmigrate probe")
        except ZdmigrateError as exc:
            return dsn.scrub(first_line(exc, problems=3), target.url)
        try:
            found = Probe(target)
            store = state.Store(conn, settings.state_schema)
            if store.exists():
                found.phases = {mid: row.phase for mid, row in store.migrations.load().items()}
                for mid in found.phases:
                    if store.steps.partial_phases(mid):
                        found.interrupted.add(mid)
            return found
        except psycopg.Error as exc:
            return dsn.scrub(f"cannot read zdmigrate's schema: {first_line(exc)}", target.url)
        finally:
            conn.close()

    # an error reading a reached target (a phase this version does not know) is raised
    by_name, _ = each_target(targets, one, parallel=parallel, raise_first=True)
    answers = [by_name[t.name] for t in targets]
    problems = [(t, a) for t, a in zip(targets, answers, strict=True) if isinstance(a, str)]
    if problems:
        raise TargetsUnreachable(problems, len(targets))
    log(f"{len(targets)} target(s) reached")
    return [a for a in answers if isinstance(a, Probe)]


@dataclass(frozen=True)
class AcrossOptions:
    """How a phase command runs across targets: what `advance_across` and `rollback_across`
    both take (the CLI builds it from the flags of `phase advance` and `phase rollback`)."""

    #: The migration; None: the oldest not complete (advance) or the newest started
    #: (rollback) on some target.
    migration_id: str | None = None
    #: The goal phase, a `Phase` or its name; None: the command's default.
    to: Phase | str | None = None
    #: Targets at once; None: the settings' `parallel`.
    parallel: int | None = None
    #: A target run first and alone; the others run only if it succeeds.
    canary: str | None = None
    #: Targets left out on purpose (decommissioned); `reason` is recorded in the
    #: phase log of every other target.
    skip: Sequence[str] = ()
    reason: str | None = None
    accept_changed: bool = False
    log: Log = quiet

    @property
    def goal(self) -> Phase | None:
        """`to` as a Phase (raises UnknownPhase, exit 2, on a bad name)."""
        return Phase.parse(self.to) if isinstance(self.to, str) else self.to


def advance_across(
    settings: Settings,
    targets: Sequence[Target],
    options: AcrossOptions = AcrossOptions(),
    *,
    dry_run: bool = False,
    override_reason: str | None = None,
    reporter_for: Callable[[Log], Reporter | None] | None = None,
) -> AcrossRun:
    """Take one migration to one phase on every target (but the skipped ones).

    Without `options.to`: the phase the furthest target is at when they are not
    in step, else the next phase with work. Returns what each target did;
    `AcrossRun.exit_code` is the worst of theirs. Bad input (exit 2) and an
    unreachable target (exit 3) raise before anything changes.
    `reporter_for(target_log)` gives each target's backfill steps a progress
    reporter (the CLI: log lines prefixed with the target).
    """
    goal_asked = options.goal
    if goal_asked is Phase.PENDING:
        raise BadInput("advance --to pending makes no sense; use `phase rollback --to pending`")
    log, canary = options.log, options.canary
    plan, probes, migration = _begin(settings, targets, options, "advance")
    if migration is None:
        log("every migration is complete on every target")
        return AcrossRun("advance", None, None, dry_run=dry_run)
    phases = [p.phase_of(migration.id) for p in probes]
    furthest = max(phases)
    goal = goal_asked or (furthest if min(phases) < furthest
                          else next_with_work(migration, furthest))
    run = AcrossRun("advance", migration.id, goal, dry_run=dry_run, canary=canary,
                    skipped=plan.skipped)
    if goal is None:
        log(f"{migration.id} is complete on every target")
        return run
    log(f"{migration.id}: taking {len(probes)} target(s) to {goal}, {plan.parallel} at once"
        + (f", {canary} first" if canary else ""))

    # the fleet checks (backfill, contract) of every target see the whole set's instances
    shared = fleet_of_set(settings, plan.running, [s.name for s in plan.skipped],
                          parallel=plan.parallel)

    def one(found: Probe, target_log: Log) -> list[Transition]:
        if plan.skipped and not dry_run:
            _record_skips(settings, found, migration, goal, plan.skipped)
        return advance(
            found.target.settings(settings), migration.id, to=goal, dry_run=dry_run,
            accept_changed=options.accept_changed, override_reason=override_reason,
            log=target_log, migrations=plan.migrations, fleet_instances=shared,
            reporter=reporter_for(target_log) if reporter_for is not None else None,
        )

    run.results = _fan_out(plan, probes, migration, one, log, _phase_now(settings, migration))
    return run


def rollback_across(
    settings: Settings, targets: Sequence[Target], options: AcrossOptions = AcrossOptions(),
) -> AcrossRun:
    """Roll one migration back to one phase on every target (but the skipped ones).

    Without `options.to`: one phase before the furthest target's. A target
    already at or before the goal (and with no interrupted phase to undo) does
    nothing.
    """
    goal_asked = options.goal
    log, canary = options.log, options.canary
    plan, probes, migration = _begin(settings, targets, options, "rollback")
    if migration is None:
        log("no migration has started on any target; nothing to roll back")
        return AcrossRun("rollback", None, None)
    furthest = max(p.phase_of(migration.id) for p in probes)
    goal = goal_asked if goal_asked is not None else (furthest.previous or Phase.PENDING)
    run = AcrossRun("rollback", migration.id, goal, canary=canary, skipped=plan.skipped)
    log(f"{migration.id}: rolling {len(probes)} target(s) back to {goal}, "
        f"{plan.parallel} at once" + (f", {canary} first" if canary else ""))

    def one(found: Probe, target_log: Log) -> list[Transition]:
        if plan.skipped:
            _record_skips(settings, found, migration, goal, plan.skipped)
        current = found.phase_of(migration.id)
        if current < goal and migration.id not in found.interrupted:
            target_log(f"{migration.id} is at {current}, before {goal}; nothing to roll back")
            return []
        return rollback(found.target.settings(settings), migration.id, to=goal,
                        accept_changed=options.accept_changed, log=target_log,
                        migrations=plan.migrations)

    run.results = _fan_out(plan, probes, migration, one, log, _phase_now(settings, migration))
    return run


def fleet_of_set(
    settings: Settings, targets: Sequence[Target], skipped: Sequence[str] = (), *,
    parallel: int | None = None,
) -> SharedFleet:
    """The fleet the checks of `targets` consult: instances seen on any target count.

    That is the targets acted on and every other configured target (an app
    instance connected to a shard left out by --target still runs the old
    version), but those skipped on purpose (decommissioned). Read lazily, once
    for many checks (`SharedFleet`); a target that cannot be read fails the check
    closed (exit 3, naming it).
    """
    names = {t.name for t in targets}
    others = [t for t in load_targets(settings)
              if t.name not in names and t.name not in skipped]
    return SharedFleet([*targets, *others], settings, parallel=parallel)


def _phase_now(settings: Settings, migration: Migration) -> Callable[[Target], Phase | None]:
    """Reads where a target stands now (after a failure: it may have entered some phases);
    None when it cannot be read."""
    def read(target: Target) -> Phase | None:
        try:
            conn = db.connect(target.settings(settings), application_name="zdmigrate probe")
        except ZdmigrateError:
            return None
        try:
            store = state.Store(conn, settings.state_schema)
            if not store.exists():
                return Phase.PENDING
            row = store.migrations.load().get(migration.id)
            return row.phase if row else Phase.PENDING
        except psycopg.Error:
            return None
        finally:
            conn.close()

    return read


@dataclass
class _Plan:
    """The run's input, checked before any connection: targets to run, skipped, canary."""

    migrations: list[Migration]
    running: list[Target]
    skipped: list[SkippedTarget]
    canary: str | None
    parallel: int

    @classmethod
    def make(cls, settings: Settings, targets: Sequence[Target], options: AcrossOptions) -> _Plan:
        if not targets:
            raise BadInput("no targets to act on", hint="configure targets (see "
                           "docs/many-databases.md), or pass --database-url for one database")
        skip, reason, canary = options.skip, options.reason, options.canary
        migrations = validated(settings, options.migration_id)
        names = [t.name for t in targets]
        for name in skip:
            if name not in names:
                raise BadInput(f"--skip-target {name}: no selected target has that name",
                               hint="targets: " + ", ".join(names[:8]))
        if skip and not (reason and reason.strip()):
            raise BadInput("--skip-target needs --reason \"...\": the phase log of every other "
                           "target records why", hint='e.g. --skip-target shard-09 --reason '
                           '"merged into shard-04, decommissioned"')
        running = [t for t in targets if t.name not in skip]
        if not running:
            raise BadInput("every selected target is skipped; nothing would run")
        if canary is not None and canary not in [t.name for t in running]:
            raise BadInput(f"--canary {canary}: no selected target (not skipped) has that name",
                           hint="targets: " + ", ".join(t.name for t in running[:8]))
        actor = settings.actor or default_actor()
        skipped = [SkippedTarget(name, (reason or "").strip(), actor)
                   for name in dict.fromkeys(skip)]
        for s in skipped:
            options.log(f"{s.name}: skipped on purpose ({s.reason}); recorded in the phase log "
                        "of every other target")
        return cls(migrations, running, skipped, canary, options.parallel or settings.parallel)


def _begin(
    settings: Settings, targets: Sequence[Target], options: AcrossOptions, purpose: str
) -> tuple[_Plan, list[Probe], Migration | None]:
    """The run's input checked, every target probed, and the migration chosen (None: none
    is left to `purpose`, "advance" or "rollback")."""
    plan = _Plan.make(settings, targets, options)
    probes = probe(settings, plan.running, parallel=plan.parallel, log=options.log)
    return plan, probes, _chosen(plan.migrations, options.migration_id, probes, purpose)


def _chosen(
    migrations: list[Migration], migration_id: str | None, probes: Sequence[Probe], purpose: str
) -> Migration | None:
    """The migration named, else the oldest not complete (advance) or the newest started
    (rollback) on some target."""
    if migration_id is not None:
        return find(migrations, migration_id)
    if purpose == "advance":
        for migration in migrations:
            if any(not p.phase_of(migration.id).is_complete for p in probes):
                return migration
        return None
    for migration in reversed(migrations):
        if any(p.phase_of(migration.id) is not Phase.PENDING or migration.id in p.interrupted
               for p in probes):
            return migration
    return None


def _record_skips(settings: Settings, found: Probe, migration: Migration, goal: Phase,
                  skipped: Sequence[SkippedTarget]) -> None:
    """Write each skip into this target's phase log (creating zdmigrate's schema if needed)."""
    conn = db.connect(found.target.settings(settings), application_name="zdmigrate skip-target")
    try:
        store = state.Store(conn, settings.state_schema)
        store.ensure_schema()
        with conn.transaction():
            for s in skipped:
                store.phase_log.skip(
                    migration_id=migration.id, target=s.name,
                    from_phase=found.phase_of(migration.id), to_phase=goal,
                    actor=s.actor, reason=s.reason)
    finally:
        conn.close()


TargetWork = Callable[[Probe, Log], list[Transition]]


def _fan_out(
    plan: _Plan, probes: Sequence[Probe], migration: Migration, work: TargetWork, log: Log,
    phase_now: Callable[[Target], Phase | None],
) -> list[TargetResult]:
    """Run `work` on every probe (the canary first, alone), at most `plan.parallel` at once."""
    results: dict[str, TargetResult] = {}
    finished = [0]
    lock = threading.Lock()
    probed = {p.target.name: p for p in probes}

    def one(target: Target) -> None:
        name = target.name
        result = _run_one(probed[name], migration, work, lambda line: log(f"[{name}] {line}"))
        if result.exit_code != 0:
            result.after = phase_now(target) or result.after
        with lock:
            results[name] = result
            finished[0] += 1
            log(f"[{name}] {result.outcome}" + (f": {result.error}" if result.error else "")
                + f" ({finished[0]} of {len(probes)} target(s) finished)")

    rest = list(probes)
    if plan.canary is not None:
        first = next(p for p in probes if p.target.name == plan.canary)
        rest.remove(first)
        log(f"[{plan.canary}] canary: running it first, alone")
        one(first.target)
        if results[plan.canary].exit_code != 0:
            for found in rest:
                results[found.target.name] = TargetResult(
                    found.target, "not-run", found.phase_of(migration.id),
                    found.phase_of(migration.id),
                    error=f"not run: the canary {plan.canary} failed")
            return [results[p.target.name] for p in probes]
    each_target([p.target for p in rest], one, parallel=plan.parallel, raise_first=True)
    return [results[p.target.name] for p in probes]


def _run_one(found: Probe, migration: Migration, work: TargetWork, log: Log) -> TargetResult:
    """One target's command; any error becomes its result (never the whole run's)."""
    target = found.target
    before = found.phase_of(migration.id)
    started = time.monotonic()
    result = TargetResult(target, "done", before, before)
    try:
        result.transitions = work(found, log)
        if not result.transitions:
            result.outcome = "no-op"
        elif any(t.dry_run for t in result.transitions):
            result.outcome = "planned"
    except PhaseRefused as exc:
        result.transitions = list(exc.done)
        result.outcome, result.exit_code = "refused", exc.exit_code
        reasons = "; ".join(f"[{b.check}] {b.message}" for b in exc.blockers)
        result.error = dsn.scrub(exc.message + (f": {reasons}" if reasons else ""), target.url)
    except ZdmigrateError as exc:
        result.outcome, result.exit_code = "failed", exc.exit_code
        result.error = dsn.scrub(first_line(exc, problems=3), target.url)
    except Exception as exc:  # a bug, on one target: report it there, let the others finish
        result.outcome, result.exit_code = "failed", EXIT_OPERATIONAL
        result.error = dsn.scrub(f"internal error: {type(exc).__name__}: {exc}", target.url)
    real = [t for t in result.transitions if not t.dry_run]
    if real:
        result.after = real[-1].to_phase
    result.seconds = time.monotonic() - started
    return result
