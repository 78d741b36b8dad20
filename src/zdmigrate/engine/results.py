"""What the engine's commands return: transitions, migration statuses and phase plans (data, no text)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zdmigrate import shadow_reads
from zdmigrate.errors import Blocker
from zdmigrate.migration import Migration
from zdmigrate.phases import Phase
from zdmigrate.steps import Step


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
