"""Saying which app versions run: heartbeats, deploy declarations, retirements.

The rows are written through `zdmigrate.state.Store`.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

import psycopg

from zdmigrate.errors import BadInput
from zdmigrate.fleet.model import Instance, instance_from_row
from zdmigrate.state import Store


def heartbeat(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    app: str,
    version: str,
    instance_id: str | None = None,
    ttl: int = 60,
    host: str | None = None,
    pid: int | None = None,
    info: Mapping[str, Any] | None = None,
) -> Instance:
    """Say that `instance_id` of `app` runs `version`, for the next `ttl` seconds.

    The default instance id is this machine's host name (one sidecar per host
    or pod). `started_at` is kept while the version stays the same.
    """
    host = host or socket.gethostname()
    instance_id = instance_id or host
    return instance_from_row(Store(conn, schema).instances.upsert(
        app=app, instance_id=instance_id, version=version, source="heartbeat",
        ttl=ttl, host=host, pid=pid, info=info or {},
    ))


def stop_heartbeat(
    conn: psycopg.Connection[Any], schema: str, *, app: str, instance_id: str | None = None
) -> bool:
    """Remove an instance's heartbeat row at once (clean stop); True if there was one."""
    return Store(conn, schema).instances.delete_heartbeat(
        app=app, instance_id=instance_id or socket.gethostname()
    )


def declare(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    app: str,
    version: str,
    instances: int = 1,
    ttl: int = 86400,
) -> list[Instance]:
    """Declare that `instances` instances of `app` `version` run, for `ttl` seconds.

    Declaring again refreshes the rows and scales them to the new count. The
    rows are named ``declared:VERSION#N``. Other versions are left alone: retire
    them with `retire` once the deploy has replaced them.
    """
    if instances < 1:
        raise BadInput(f"--instances must be at least 1, not {instances}",
                       hint="use `zdmigrate fleet retire` to say a version is gone")
    ids = [f"declared:{version}#{n}" for n in range(1, instances + 1)]
    rows = Store(conn, schema).instances
    with conn.transaction():
        out = [
            instance_from_row(rows.upsert(
                app=app, instance_id=i, version=version, source="declared",
                ttl=ttl, host=None, pid=None, info={"declared_instances": instances},
            ))
            for i in ids
        ]
        rows.delete_other_declared(app=app, version=version, keep=ids)
    return out


def retire(conn: psycopg.Connection[Any], schema: str, *, app: str, version: str) -> int:
    """Say that `version` of `app` no longer runs: remove its declared and remembered rows.

    Heartbeat rows are left alone: a running instance would write them again,
    and one that died drops out when its TTL runs out. Returns the rows removed.
    """
    return Store(conn, schema).instances.delete_version(app=app, version=version)
