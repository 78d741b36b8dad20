"""Compat policy: a migration's `compat` declaration and every check made against it.

- `declarations`: parsing ``compat = {"shop": {"dual_write_from": "1.5", ...}}``;
- `checks`: each check with its stable id, used by the engine's phase gate, the
  fleet and the pre-deploy gate alike.

Low in the layers: it imports only errors, phases and steps, and is given the
live instances and the destructive statements as data.
"""

from zdmigrate.compat.checks import (
    CHECK_DUAL_WRITE,
    CHECK_DUAL_WRITE_NEEDED,
    CHECK_NOT_PROVEN,
    CHECK_OLD_SHAPE_DROPPED,
    CHECK_OLD_VERSION,
    CHECK_READ_NEW_TOO_EARLY,
    FLEET_CHECKS,
    LiveInstance,
    deploy_blockers,
    migration_needs_app_dual_writes,
    needs_app_dual_writes,
    phase_blockers,
    undeclared_contract_blockers,
)
from zdmigrate.compat.declarations import KEYS, AppCompat, parse_compat, parse_version

__all__ = [
    "CHECK_DUAL_WRITE",
    "CHECK_DUAL_WRITE_NEEDED",
    "CHECK_NOT_PROVEN",
    "CHECK_OLD_SHAPE_DROPPED",
    "CHECK_OLD_VERSION",
    "CHECK_READ_NEW_TOO_EARLY",
    "FLEET_CHECKS",
    "KEYS",
    "AppCompat",
    "LiveInstance",
    "deploy_blockers",
    "migration_needs_app_dual_writes",
    "needs_app_dual_writes",
    "parse_compat",
    "parse_version",
    "phase_blockers",
    "undeclared_contract_blockers",
]
