"""Which app versions are live: heartbeats, declarations and sessions (no policy here).

- `settings`: ``[tool.zdmigrate.fleet]`` (FleetSettings, ttl_seconds);
- `model`: the Instance model;
- `sources`: reading every source into one list (live_instances, ...);
- `writes`: heartbeats, declarations, retirements (through `zdmigrate.state`);
- `checks`: the engine's fleet phase check, which asks `zdmigrate.compat`;
- `across`: the fleet of several targets (shards): `fleet_across`, `SharedFleet`.

The compat checks (phase_blockers, needs_app_dual_writes, the check ids) live in
`zdmigrate.compat`; they are re-exported here for existing callers.
"""

from zdmigrate.compat import (
    CHECK_DUAL_WRITE,
    CHECK_NOT_PROVEN,
    CHECK_OLD_VERSION,
    FLEET_CHECKS,
    migration_needs_app_dual_writes,
    needs_app_dual_writes,
    phase_blockers,
)
from zdmigrate.fleet.across import SharedFleet, fleet_across, merge_across
from zdmigrate.fleet.checks import check_migration, destructive_contract_statements
from zdmigrate.fleet.model import SOURCES, Instance
from zdmigrate.fleet.settings import DEFAULT_APPLICATION_NAME_PATTERN, FleetSettings, ttl_seconds
from zdmigrate.fleet.sources import live_instances, session_instances, stored_instances
from zdmigrate.fleet.writes import declare, heartbeat, retire, stop_heartbeat

__all__ = [
    "CHECK_DUAL_WRITE",
    "CHECK_NOT_PROVEN",
    "CHECK_OLD_VERSION",
    "DEFAULT_APPLICATION_NAME_PATTERN",
    "FLEET_CHECKS",
    "SOURCES",
    "FleetSettings",
    "Instance",
    "SharedFleet",
    "check_migration",
    "declare",
    "destructive_contract_statements",
    "fleet_across",
    "heartbeat",
    "live_instances",
    "merge_across",
    "migration_needs_app_dual_writes",
    "needs_app_dual_writes",
    "phase_blockers",
    "retire",
    "session_instances",
    "stop_heartbeat",
    "stored_instances",
    "ttl_seconds",
]
