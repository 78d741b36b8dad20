"""The engine: one function per command, each doing the work and returning data.

    from zdmigrate import engine
    from zdmigrate.config import Settings
    engine.advance(Settings.load({"database_url": url, "migrations": "migrations"}))

The CLI, library users and tests call these same functions. Each command lives in
its own module (`engine/advance.py` defines `advance`, and so on); the gate
checks in `checks`, the session in `session`, the step executors in `executors`.

Names are imported on first use, so `zdmigrate lint x.sql` stays light (no
psycopg, SQLAlchemy or Alembic).
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zdmigrate.engine.across import AcrossOptions, advance_across, rollback_across
    from zdmigrate.engine.adopt import adopt
    from zdmigrate.engine.advance import advance
    from zdmigrate.engine.backfill import BackfillRun, backfill
    from zdmigrate.engine.backfill_across import BackfillAcross, TargetBackfill, backfill_across
    from zdmigrate.engine.checks import PHASE_CHECKS, CheckContext, PhaseCheck, blockers_for
    from zdmigrate.engine.fleet import fleet_declare, fleet_heartbeat, fleet_list, fleet_retire
    from zdmigrate.engine.init import InitResult, init
    from zdmigrate.engine.lint import LintResult, lint
    from zdmigrate.engine.list_targets import list_targets
    from zdmigrate.engine.new import new
    from zdmigrate.engine.plan import plan
    from zdmigrate.engine.results import (
        AcrossRun,
        MigrationStatus,
        PhasePlan,
        TargetResult,
        Transition,
    )
    from zdmigrate.engine.rollback import rollback
    from zdmigrate.engine.selection import default_migration
    from zdmigrate.engine.session import default_actor
    from zdmigrate.engine.status import status
    from zdmigrate.engine.status_across import AcrossStatus, status_across

#: Each public name and the module that defines it.
_EXPORTS = {
    "adopt": "adopt",
    "advance": "advance",
    "advance_across": "across", "rollback_across": "across", "AcrossOptions": "across",
    "backfill": "backfill", "BackfillRun": "backfill",
    "backfill_across": "backfill_across", "BackfillAcross": "backfill_across",
    "TargetBackfill": "backfill_across",
    "CheckContext": "checks", "PHASE_CHECKS": "checks", "PhaseCheck": "checks",
    "blockers_for": "checks",
    "fleet_list": "fleet", "fleet_heartbeat": "fleet", "fleet_declare": "fleet",
    "fleet_retire": "fleet",
    "init": "init", "InitResult": "init",
    "lint": "lint", "LintResult": "lint",
    "list_targets": "list_targets",
    "new": "new",
    "plan": "plan",
    "MigrationStatus": "results", "PhasePlan": "results", "Transition": "results",
    "AcrossRun": "results", "TargetResult": "results",
    "rollback": "rollback",
    "default_migration": "selection",
    "default_actor": "session",
    "status": "status",
    "status_across": "status_across", "AcrossStatus": "status_across",
}

__all__ = [
    "PHASE_CHECKS",
    "AcrossOptions",
    "AcrossRun",
    "AcrossStatus",
    "BackfillAcross",
    "BackfillRun",
    "CheckContext",
    "InitResult",
    "LintResult",
    "MigrationStatus",
    "PhaseCheck",
    "PhasePlan",
    "TargetBackfill",
    "TargetResult",
    "Transition",
    "adopt",
    "advance",
    "advance_across",
    "backfill",
    "backfill_across",
    "blockers_for",
    "default_actor",
    "default_migration",
    "fleet_declare",
    "fleet_heartbeat",
    "fleet_list",
    "fleet_retire",
    "init",
    "lint",
    "list_targets",
    "new",
    "plan",
    "rollback",
    "rollback_across",
    "status",
    "status_across",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


class _Package(ModuleType):
    """This package, refusing to let a command's module stand in for the command.

    Importing `zdmigrate.engine.status` sets the package's `status` attribute to
    that module; the function of the same name must stay what `engine.status` is.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
