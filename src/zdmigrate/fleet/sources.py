"""Reading which app versions are live: heartbeats, declarations and sessions, merged.

Three sources feed one list of instances:

- ``heartbeat``: a row per app instance, written by `zdmigrate.runtime` or by
  ``zdmigrate fleet heartbeat``, refreshed before its TTL runs out;
- ``declared``: rows a deploy system writes with ``zdmigrate fleet declare`` and
  removes with ``zdmigrate fleet retire``;
- ``session``: connections to this database whose ``application_name`` is
  ``app@version`` (pattern configurable). Any role sees other sessions'
  application_name; their client address needs ``pg_read_all_stats``. Each
  session seen is remembered for `session_ttl` seconds, so an app whose pool is
  empty for a moment still counts.

An instance is live until ``last_seen + ttl``, measured on the database's clock:
one that vanished without a word still counts until then.

Warning: the functions take a psycopg connection and run in the caller's
transaction (or in autocommit); remembering sessions, which a read-only role
may be refused, runs in a savepoint so the caller's transaction survives.
"""

from __future__ import annotations

from typing import Any

import psycopg
from packaging.version import Version
from psycopg.rows import dict_row

from zdmigrate.fleet.model import Instance, instance_from_row
from zdmigrate.fleet.settings import FleetSettings
from zdmigrate.state import Store


def live_instances(
    conn: psycopg.Connection[Any],
    schema: str,
    fleet_settings: FleetSettings | None = None,
    *,
    app: str | None = None,
    remember_sessions: bool = True,
) -> list[Instance]:
    """Every live instance from the three sources, sorted by app, version, source, id.

    Sessions seen now are also remembered (source ``session``, TTL
    `session_ttl`) when the state schema is in place and the role may write it;
    otherwise they are only counted while connected.
    """
    fleet_settings = fleet_settings or FleetSettings()
    sessions = session_instances(conn, fleet_settings)
    rows = Store(conn, schema).instances
    exists, sessions_allowed = rows.table_state()
    if remember_sessions and sessions and sessions_allowed:
        rows.remember_sessions(
            [{"app": s.app, "instance_id": s.instance_id, "version": s.version, "host": s.host,
              "ttl_seconds": s.ttl_seconds, "info": s.info} for s in sessions],
        )
    stored = stored_instances(conn, schema) if exists else []
    # a session connected now always counts, whatever a stored row of the same id
    # says: rows can be written by others, pg_stat_activity cannot
    connected = {(s.app, s.instance_id) for s in sessions}
    merged = [i for i in stored if (i.app, i.instance_id) not in connected] + sessions
    if app is not None:
        merged = [i for i in merged if i.app == app]
    return sorted(merged, key=instance_order)


def instance_order(instance: Instance) -> tuple[str, tuple[int, Version | str], str, str]:
    """How instances are listed: by app, version (unparseable first), source and id."""
    parsed = instance.parsed_version
    version: tuple[int, Version | str] = (1, parsed) if parsed is not None else (
        0, instance.version)
    return (instance.app, version, instance.source, instance.instance_id)


def session_instances(
    conn: psycopg.Connection[Any], fleet_settings: FleetSettings | None = None
) -> list[Instance]:
    """Connections to this database whose application_name matches the pattern.

    Grouped by app, version and client host (a pool of 20 connections is one
    instance, with ``info["connections"] = 20``). Without pg_read_all_stats the
    client host of other roles' sessions is hidden, so they group as ``unknown``.
    """
    pattern = (fleet_settings or FleetSettings()).pattern
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """SELECT application_name,
                      coalesce(client_hostname, host(client_addr),
                               CASE WHEN client_port = -1 THEN 'local' END) AS host,
                      count(*) AS connections,
                      min(backend_start) AS started_at,
                      array_agg(pid ORDER BY pid) AS pids,
                      now() AS now,
                      now() + make_interval(secs => %s) AS expires_at
                 FROM pg_stat_activity
                WHERE datname = current_database()
                  AND pid <> pg_backend_pid()
                  AND application_name <> ''
                GROUP BY 1, 2""",
            [(fleet_settings or FleetSettings()).session_ttl],
        )
        rows = cur.fetchall()
    ttl = (fleet_settings or FleetSettings()).session_ttl
    out: list[Instance] = []
    for row in rows:
        match = pattern.match(row["application_name"])
        if not match:
            continue
        app, version = match.group("app"), match.group("version")
        host = row["host"] or "unknown"
        out.append(
            Instance(
                app=app,
                instance_id=f"session:{host}:{version}",
                version=version,
                source="session",
                last_seen=row["now"],
                expires_at=row["expires_at"],
                ttl_seconds=ttl,
                started_at=row["started_at"],
                host=row["host"],
                pid=row["pids"][0] if len(row["pids"]) == 1 else None,
                info={"connections": int(row["connections"]), "pids": list(row["pids"]),
                      "application_name": row["application_name"]},
            )
        )
    return out


def stored_instances(conn: psycopg.Connection[Any], schema: str) -> list[Instance]:
    """Rows of ``instances`` whose TTL has not run out (database clock)."""
    rows = Store(conn, schema).instances
    if not rows.table_state()[0]:
        return []
    return [instance_from_row(row) for row in rows.live_rows()]
