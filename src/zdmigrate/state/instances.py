"""The ``instances`` table: live app instances (heartbeats, declarations, remembered sessions).

Rows are returned as plain dicts with an ``expires_at`` column
(``last_seen + ttl_seconds``, on the database's clock); `zdmigrate.fleet`
turns them into its Instance model.

Warning: these functions run in the caller's transaction unless they say otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from zdmigrate.state.schema import table

#: The schema version that allows source='session' rows (see state.schema.SCHEMA_VERSIONS).
SESSION_SCHEMA_VERSION = 3

_COLUMNS = """app, instance_id, version, host, pid, source, started_at, last_seen,
              ttl_seconds, info, last_seen + make_interval(secs => ttl_seconds) AS expires_at"""


def table_state(conn: psycopg.Connection[Any], schema: str) -> tuple[bool, bool]:
    """(the instances table exists, it may hold source='session' rows: schema version 3)."""
    row = conn.execute(
        "SELECT to_regclass(format('%%I.instances', %s::text)) IS NOT NULL, "
        "to_regclass(format('%%I.schema_version', %s::text)) IS NOT NULL",
        [schema, schema],
    ).fetchone()
    if not row or not row[0]:
        return False, False
    if not row[1]:
        return True, False
    found = conn.execute(
        sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE version = %s)").format(
            table(schema, "schema_version")
        ),
        [SESSION_SCHEMA_VERSION],
    ).fetchone()
    return True, bool(found and found[0])


def live_rows(conn: psycopg.Connection[Any], schema: str) -> list[dict[str, Any]]:
    """Rows whose TTL has not run out (database clock)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT " + _COLUMNS + " FROM {} "
                    "WHERE last_seen + make_interval(secs => ttl_seconds) > now()")
            .format(table(schema, "instances"))
        )
        return list(cur.fetchall())


def apps(conn: psycopg.Connection[Any], schema: str) -> list[str]:
    """Every app with a row, live or expired: the apps the fleet has heard of."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT DISTINCT app FROM {} ORDER BY app")
                    .format(table(schema, "instances")))
        return [row[0] for row in cur.fetchall()]


def remember_sessions(
    conn: psycopg.Connection[Any], schema: str, sessions: Sequence[Mapping[str, Any]]
) -> None:
    """Remember sessions seen in pg_stat_activity (source 'session'), in a savepoint.

    Keys of each session: app, instance_id, version, host, ttl_seconds, info. A
    role that may not write (read-only, no privilege) is silently skipped.
    """
    query = sql.SQL(
        """INSERT INTO {} AS i (app, instance_id, version, host, source, ttl_seconds, info)
           VALUES (%s, %s, %s, %s, 'session', %s, %s)
           ON CONFLICT (app, instance_id) DO UPDATE
              SET last_seen = now(), ttl_seconds = excluded.ttl_seconds, info = excluded.info,
                  version = excluded.version, source = 'session'
            WHERE i.source = 'session'"""
    ).format(table(schema, "instances"))
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                query,
                [
                    [s["app"], s["instance_id"], s["version"], s["host"], s["ttl_seconds"],
                     Jsonb(dict(s["info"]))]
                    for s in sessions
                ],
            )
    except (pg_errors.InsufficientPrivilege, pg_errors.ReadOnlySqlTransaction):
        pass  # a read-only role still sees the sessions that are connected now


def upsert(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    app: str,
    instance_id: str,
    version: str,
    source: str,
    ttl: int,
    host: str | None,
    pid: int | None,
    info: Mapping[str, Any],
) -> dict[str, Any]:
    """Write an instance's row (``started_at`` kept while version and source stay); the row."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                """INSERT INTO {} AS i (app, instance_id, version, host, pid, source,
                                        ttl_seconds, info)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (app, instance_id) DO UPDATE
                      SET version = excluded.version, host = excluded.host,
                          pid = excluded.pid, source = excluded.source,
                          ttl_seconds = excluded.ttl_seconds, info = excluded.info,
                          last_seen = now(),
                          started_at = CASE WHEN i.version = excluded.version
                                             AND i.source = excluded.source
                                            THEN i.started_at ELSE now() END
                   RETURNING """ + _COLUMNS
            ).format(table(schema, "instances")),
            [app, instance_id, version, host, pid, source, ttl, Jsonb(dict(info))],
        )
        row = cur.fetchone()
    assert row is not None
    return row


def write_heartbeat(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    app: str,
    instance_id: str,
    version: str,
    host: str,
    pid: int,
    ttl_seconds: int,
    info: dict[str, Any],
) -> None:
    """The runtime's heartbeat, through ``runtime_heartbeat`` (schema version 14).

    The function runs as the schema's owner and refuses (SQLSTATE 42501,
    ``InsufficientPrivilege``) to replace a live row that is not a heartbeat, to
    change a live row's version, or to cut its TTL short: a role that may only
    heartbeat cannot hide an instance. On a schema older than version 14 the row
    is written directly, which needs write grants on the table.
    """
    args = [app, instance_id, version, host, pid, ttl_seconds, json.dumps(info)]
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("SELECT {}(%s, %s, %s, %s, %s, %s, %s::jsonb)").format(
                    table(schema, "runtime_heartbeat")
                ),
                args,
            )
        return
    except pg_errors.UndefinedFunction:
        pass
    conn.execute(
        sql.SQL(
            "INSERT INTO {} AS i (app, instance_id, version, host, pid, source, ttl_seconds, info) "
            "VALUES (%s, %s, %s, %s, %s, 'heartbeat', %s, %s::jsonb) "
            "ON CONFLICT (app, instance_id) DO UPDATE SET version = excluded.version, "
            "host = excluded.host, pid = excluded.pid, source = 'heartbeat', "
            "ttl_seconds = excluded.ttl_seconds, info = excluded.info, last_seen = now()"
        ).format(table(schema, "instances")),
        args,
    )


def unregister_heartbeat(
    conn: psycopg.Connection[Any], schema: str, *, app: str, instance_id: str
) -> bool:
    """The runtime's clean stop: remove the heartbeat row this connection wrote last.

    Through ``runtime_unregister`` (schema version 14), which deletes only a row
    whose last heartbeat came from this same backend; directly on older schemas.
    """
    try:
        with conn.transaction():
            row = conn.execute(
                sql.SQL("SELECT {}(%s, %s)").format(table(schema, "runtime_unregister")),
                [app, instance_id],
            ).fetchone()
        return bool(row and row[0])
    except pg_errors.UndefinedFunction:
        return delete_heartbeat(conn, schema, app=app, instance_id=instance_id)


def delete_heartbeat(
    conn: psycopg.Connection[Any], schema: str, *, app: str, instance_id: str
) -> bool:
    """Remove an instance's heartbeat row (a clean stop, by a role that may write the table)."""
    cur = conn.execute(
        sql.SQL("DELETE FROM {} WHERE app = %s AND instance_id = %s AND source = 'heartbeat'").format(
            table(schema, "instances")
        ),
        [app, instance_id],
    )
    return cur.rowcount > 0


def delete_other_declared(
    conn: psycopg.Connection[Any], schema: str, *, app: str, version: str, keep: Sequence[str]
) -> None:
    """Remove the declared rows of `app` `version` other than the instance ids in `keep`."""
    conn.execute(
        sql.SQL(
            "DELETE FROM {} WHERE app = %s AND version = %s AND source = 'declared' "
            "AND NOT (instance_id = ANY(%s))"
        ).format(table(schema, "instances")),
        [app, version, list(keep)],
    )


def delete_version(conn: psycopg.Connection[Any], schema: str, *, app: str, version: str) -> int:
    """Remove the declared and remembered-session rows of `app` `version`; rows removed."""
    cur = conn.execute(
        sql.SQL(
            "DELETE FROM {} WHERE app = %s AND version = %s AND source IN ('declared', 'session')"
        ).format(table(schema, "instances")),
        [app, version],
    )
    return cur.rowcount
