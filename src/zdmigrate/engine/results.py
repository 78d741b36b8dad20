"""What the engine's commands return: transitions, migration statuses, phase plans, and what a
command across targets did on each (data, no text)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zdmigrate import shadow_reads
from zdmigrate.errors import Blocker
from zdmigrate.migration import Migration
from zdmigrate.phases import Phase
from zdmigrate.steps import Step
from zdmigrate.targets import Target


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
    #: The revision's message: the first line of its docstring, as Alembic shows it.
    message: str = ""
    #: While a rename through views is in flight: its version schema, and the
    #: search_path each live app version that needs it must use (engine/search_paths.py).
    version_schema: dict[str, Any] | None = None

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
            "message": self.message,
            "version_schema": self.version_schema,
        }


@dataclass
class PhasePlan:
    migration: Migration
    phase: Phase
    steps: list[Step]
    rollback: list[Step]


@dataclass
class TargetResult:
    """What a command across targets did on one of them."""

    target: Target
    #: done, no-op (already there), refused (a gate said no), failed, not-run (the canary
    #: failed first) or planned (a dry run)
    outcome: str
    before: Phase | None = None
    after: Phase | None = None
    transitions: list[Transition] = field(default_factory=list)
    #: One line: why it failed or was refused (never a password).
    error: str | None = None
    exit_code: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.target.name, "url": self.target.shown, "outcome": self.outcome,
            "from": self.before.value if self.before else None,
            "to": self.after.value if self.after else None,
            "exit_code": self.exit_code, "error": self.error,
            "seconds": round(self.seconds, 3),
            "transitions": [t.as_dict() for t in self.transitions],
        }


@dataclass(frozen=True)
class SkippedTarget:
    """A target left out of a run on purpose (``--skip-target NAME --reason TEXT``)."""

    name: str
    reason: str
    actor: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "reason": self.reason, "actor": self.actor}


@dataclass
class AcrossRun:
    """`phase advance` or `phase rollback` across targets: what each target did."""

    action: str  # "advance" or "rollback"
    migration_id: str | None
    goal: Phase | None
    results: list[TargetResult] = field(default_factory=list)
    skipped: list[SkippedTarget] = field(default_factory=list)
    dry_run: bool = False
    canary: str | None = None

    @property
    def exit_code(self) -> int:
        """The worst of the targets' exit codes (3 failed, 2 bad input, 1 refused, 0 done)."""
        return max((r.exit_code for r in self.results), default=0)

    @property
    def failed(self) -> list[TargetResult]:
        return [r for r in self.results if r.exit_code != 0]

    def at_goal(self) -> int:
        """How many targets (skipped ones left out) reached the goal: stand at it, or past
        it in the direction of the run (later for advance, earlier for rollback)."""
        goal = self.goal
        if goal is None:
            return 0
        return sum(1 for r in self.results if r.after is not None and (
            r.after >= goal if self.action == "advance" else r.after <= goal))

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action, "migration": self.migration_id,
            "goal": self.goal.value if self.goal else None, "dry_run": self.dry_run,
            "canary": self.canary, "exit_code": self.exit_code,
            "at_goal": self.at_goal(), "targets_total": len(self.results),
            "targets": [r.as_dict() for r in self.results],
            "skipped": [s.as_dict() for s in self.skipped],
        }
