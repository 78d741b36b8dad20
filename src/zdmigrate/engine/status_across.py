"""`status` across targets: where every target stands, per migration, and the fleet's phase.

A migration is at phase P for the fleet when every target (but those skipped on
purpose for it) completed P: the fleet's phase is the earliest of theirs.

    report = status_across(settings, load_targets(settings))
    for m in report.migrations:
        m.phase, m.counts      # Phase.BACKFILL, {Phase.BACKFILL: 3, Phase.SWITCH_READ: 13}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from zdmigrate import db, dsn, state
from zdmigrate.config import Settings
from zdmigrate.engine.results import MigrationStatus
from zdmigrate.engine.session import Log, quiet
from zdmigrate.engine.status import status
from zdmigrate.errors import EXIT_OPERATIONAL, ZdmigrateError, first_line
from zdmigrate.migration import Migration, load_migrations
from zdmigrate.phases import Phase
from zdmigrate.targets import Target, each_target


@dataclass
class TargetStatus:
    """One target's statuses, or why it could not be read."""

    target: Target
    statuses: list[MigrationStatus] = field(default_factory=list)
    error: str | None = None
    exit_code: int = 0
    #: The skips recorded in this target's phase log (of other targets).
    skips: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.target.name, "url": self.target.shown,
                "reachable": self.error is None, "error": self.error}


@dataclass
class MigrationAcross:
    """One migration over every target."""

    id: str
    #: The fleet's phase: the earliest of the targets read (skipped ones left out).
    phase: Phase | None
    next: Phase | None
    counts: dict[Phase, int]
    by_target: dict[str, MigrationStatus]
    #: Targets skipped on purpose for this migration: name -> the latest skip record.
    skipped: dict[str, dict[str, Any]]
    unreachable: list[str]

    def summary(self) -> str:
        """``3 of 16 targets at backfill, 13 at switch-read``."""
        total = sum(self.counts.values())
        parts = []
        for i, (phase, n) in enumerate(sorted(self.counts.items())):
            parts.append(f"{n} of {total} targets at {phase}" if i == 0 else f"{n} at {phase}")
        text = ", ".join(parts) if parts else "no target read"
        if self.skipped:
            text += f"; {len(self.skipped)} skipped ({', '.join(self.skipped)})"
        if self.unreachable:
            text += f"; {len(self.unreachable)} unreachable ({', '.join(self.unreachable)})"
        return text

    def blockers(self) -> list[dict[str, Any]]:
        """Each target's blockers of its next phase, with the target's name."""
        return [{**b.as_dict(), "target": name}
                for name, s in self.by_target.items() for b in s.blocked_by]

    def backfill(self) -> dict[str, Any]:
        """Its backfill over every target: the total, and a line per target and table."""
        from zdmigrate.engine.backfill_across import backfills_by_target

        return backfills_by_target(self.by_target)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "phase": self.phase.value if self.phase else None,
            "next": self.next.value if self.next else None,
            "summary": self.summary(),
            "counts": {p.value: n for p, n in sorted(self.counts.items())},
            "blocked_by": self.blockers(),
            "skipped": {name: {"reason": r["reason"], "actor": r["actor"],
                               "at": r["at"].isoformat() if r.get("at") else None,
                               "to_phase": r["to_phase"]}
                        for name, r in self.skipped.items()},
            "unreachable": self.unreachable,
            "backfill": self.backfill(),
            "targets": {name: s.as_dict() for name, s in self.by_target.items()},
        }


@dataclass
class AcrossStatus:
    """`status` across targets."""

    targets: list[TargetStatus]
    migrations: list[MigrationAcross]

    @property
    def unreachable(self) -> list[TargetStatus]:
        """Targets that could not be read and are not skipped on purpose for any migration."""
        skipped = {name for m in self.migrations for name in m.skipped}
        return [t for t in self.targets if t.error is not None and t.target.name not in skipped]

    @property
    def exit_code(self) -> int:
        return max((t.exit_code for t in self.unreachable), default=0)

    def as_dict(self) -> dict[str, Any]:
        return {"migrations": [m.as_dict() for m in self.migrations],
                "targets": [t.as_dict() for t in self.targets]}


def status_across(
    settings: Settings, targets: Sequence[Target], *, parallel: int | None = None,
    log: Log = quiet,
) -> AcrossStatus:
    """Each migration over every target: the fleet's phase, counts per phase, each target's
    status, the targets skipped on purpose, and those that could not be read.

    Reads only. A target that cannot be read is reported, not raised: the others
    are still shown (`AcrossStatus.exit_code` is 3 then).
    """
    from zdmigrate.engine.across import fleet_of_set

    migrations = load_migrations(settings.migrations)
    # the fleet blockers of every target: instances seen on any target count
    shared = fleet_of_set(settings, targets, parallel=parallel)

    def one(target: Target) -> TargetStatus:
        read = TargetStatus(target)
        try:
            read.statuses = status(target.settings(settings), migrations=migrations,
                                   fleet_instances=shared)
            read.skips = _skips(settings, target)
        except ZdmigrateError as exc:
            read.error = dsn.scrub(first_line(exc), target.url)
            read.exit_code = exc.exit_code
        except psycopg.Error as exc:
            read.error = dsn.scrub(first_line(exc), target.url)
            read.exit_code = EXIT_OPERATIONAL
        return read

    found, _ = each_target(  # no failures: `one` makes a result of every error
        targets, one, parallel=parallel or settings.parallel)
    read = [found[t.name] for t in targets]
    log(f"{sum(1 for r in read if r.error is None)} of {len(read)} target(s) read")
    return AcrossStatus(read, [_over_targets(m, read) for m in migrations])


def _skips(settings: Settings, target: Target) -> list[dict[str, Any]]:
    conn = db.connect(target.settings(settings), application_name="zdmigrate status")
    try:
        store = state.Store(conn, settings.state_schema)
        return store.phase_log.skips() if store.exists() else []
    except psycopg.errors.UndefinedColumn:
        return []  # a schema from before skips were recorded
    finally:
        conn.close()


def _over_targets(migration: Migration, read: Sequence[TargetStatus]) -> MigrationAcross:
    skipped: dict[str, dict[str, Any]] = {}
    for t in read:
        for record in t.skips:
            if record["migration_id"] == migration.id:
                latest = skipped.get(record["target"])
                if latest is None or record["at"] > latest["at"]:
                    skipped[record["target"]] = record
    by_target: dict[str, MigrationStatus] = {}
    for t in read:
        for s in t.statuses:
            if s.id == migration.id:
                by_target[t.target.name] = s
    counting = {name: s for name, s in by_target.items() if name not in skipped}
    counts = Counter(s.phase for s in counting.values())
    unreachable = [t.target.name for t in read
                   if t.error is not None and t.target.name not in skipped]
    phase = min(counts) if counts else None
    return MigrationAcross(
        migration.id, phase, phase.next if phase is not None else None, dict(counts),
        by_target, skipped, unreachable)
