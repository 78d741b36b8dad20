"""`fleet` commands: list live app instances, write heartbeats, declare and retire versions.

Only the orchestration (validate, connect, call `zdmigrate.fleet`); what an
instance is and how it is read or written lives in `zdmigrate.fleet`.
"""

from __future__ import annotations

from collections.abc import Sequence

from zdmigrate import db, fleet
from zdmigrate.compat import parse_version
from zdmigrate.config import Settings
from zdmigrate.errors import BadInput
from zdmigrate.state import Store
from zdmigrate.targets import NamedTarget


def fleet_list(
    settings: Settings, app: str | None = None, *,
    targets: Sequence[NamedTarget] | None = None, parallel: int | None = None,
) -> list[fleet.Instance]:
    """Every live app instance from heartbeats, declarations and sessions.

    With `targets`, of every target (each instance lists the targets it was seen
    on); a target that cannot be read is TargetsFailed (exit 3), never left out.
    """
    if targets:
        return fleet.fleet_across(targets, settings, app=app, parallel=parallel)
    fleet_settings = fleet.FleetSettings.from_settings(settings)
    with db.connect(settings, application_name="zdmigrate fleet") as conn:
        return fleet.live_instances(conn, settings.state_schema, fleet_settings, app=app)


def fleet_heartbeat(
    settings: Settings,
    *,
    app: str,
    version: str,
    instance_id: str | None = None,
    ttl: str | float | None = None,
    stop: bool = False,
) -> fleet.Instance | bool:
    """Write (or with `stop`, remove) one heartbeat; for apps without zdmigrate.runtime."""
    fleet_settings = fleet.FleetSettings.from_settings(settings)
    _check_app(app)
    if not stop:
        _check_version(version)
    seconds = fleet.ttl_seconds(ttl, "--ttl") if ttl is not None else fleet_settings.heartbeat_ttl
    with db.connect(settings, application_name="zdmigrate fleet") as conn:
        Store(conn, settings.state_schema).ensure_schema()
        if stop:
            return fleet.stop_heartbeat(conn, settings.state_schema, app=app,
                                        instance_id=instance_id)
        return fleet.heartbeat(conn, settings.state_schema, app=app, version=version,
                               instance_id=instance_id, ttl=seconds)


def fleet_declare(
    settings: Settings, *, app: str, version: str, instances: int = 1,
    ttl: str | float | None = None,
) -> list[fleet.Instance]:
    """Declare `instances` live instances of `app` `version` (from a deploy system)."""
    fleet_settings = fleet.FleetSettings.from_settings(settings)
    _check_app(app)
    _check_version(version)
    seconds = fleet.ttl_seconds(ttl, "--ttl") if ttl is not None else fleet_settings.declare_ttl
    with db.connect(settings, application_name="zdmigrate fleet") as conn:
        Store(conn, settings.state_schema).ensure_schema()
        return fleet.declare(conn, settings.state_schema, app=app, version=version,
                             instances=instances, ttl=seconds)


def fleet_retire(settings: Settings, *, app: str, version: str) -> int:
    """Say that `app` `version` no longer runs; returns the rows removed."""
    _check_app(app)
    with db.connect(settings, application_name="zdmigrate fleet") as conn:
        Store(conn, settings.state_schema).ensure_schema()
        return fleet.retire(conn, settings.state_schema, app=app, version=version)


def _check_app(app: str) -> None:
    if not app or not app.strip() or any(c.isspace() for c in app):
        raise BadInput(f"--app {app!r} must be a non-empty name without spaces")


def _check_version(version: str) -> None:
    if parse_version(version) is None:
        raise BadInput(
            f"--version {version!r} is not a PEP 440 version",
            hint="compat thresholds are compared as PEP 440 versions, e.g. 2.0 or 1.5.3",
        )
