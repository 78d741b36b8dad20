"""The gate checks of a phase: each returns the blockers it finds before a migration enters it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from zdmigrate import backfill, db, fleet, shadow_reads
from zdmigrate.config import Settings
from zdmigrate.errors import BadInput, Blocker, TargetsFailed, first_line
from zdmigrate.migration import Migration, parents_of
from zdmigrate.phases import Phase
from zdmigrate.state import MigrationRow
from zdmigrate.steps import BackfillStep


@dataclass(frozen=True)
class CheckContext:
    """What a phase check sees: the migration, where it is going, and the database."""

    conn: psycopg.Connection[Any]
    settings: Settings
    migration: Migration
    migrations: Sequence[Migration]
    states: dict[str, MigrationRow]
    target: Phase
    actor: str
    override_reason: str | None = None
    #: True in a dry run once an earlier phase of this migration was only simulated:
    #: checks of the data that phase would have written cannot be made.
    simulated: bool = False
    #: When this database is one target of several: the live instances of the whole
    #: set (`fleet.SharedFleet`), so an old instance on any target holds contract here.
    fleet_instances: Callable[[], Sequence[fleet.Instance]] | None = None
    #: True for `status`, which reports: a set of targets whose fleet cannot be read is
    #: a blocker there, where a phase command stops with exit 3 naming the target.
    report_only: bool = False

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
    nothing: the phase is refused, never entered on a guess. Across targets, one that
    cannot be read stops the command (TargetsFailed, exit 3); `status` shows it.
    """
    try:
        return fleet.check_migration(ctx.conn, ctx.settings, ctx.migration, ctx.target,
                                     fleet_instances=ctx.fleet_instances)
    except TargetsFailed as exc:
        if not ctx.report_only:
            raise
        names = ", ".join(sorted(exc.failures))
        return [Blocker(
            "fleet-unreadable",
            f"cannot read which app versions are live on {names} (of the targets): not "
            f"proven, so {ctx.target} is refused; bring it back or skip it on purpose",
            {"targets": sorted(exc.failures)},
        )]
    except psycopg.Error as exc:
        ctx.conn.rollback() if not ctx.conn.autocommit else None
        return [Blocker(
            "fleet-unreadable",
            f"cannot read which app versions are live ({ctx.settings.state_schema}.instances, "
            f"pg_stat_activity): {first_line(exc)}; not proven, so {ctx.target} is refused",
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

    pg_version = db.server_major(ctx.conn) if ctx.conn is not None else None
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
