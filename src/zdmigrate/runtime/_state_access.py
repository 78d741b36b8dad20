"""The runtime's side of the state-schema contract: read phases, write heartbeats.

The runtime must not import ``zdmigrate.state`` (it drags in the engine's
world), so the few statements it needs live here, keeping the conventions of
state.py: tables ``<schema>.migrations`` and ``<schema>.instances``, phase
changes announced on the channel ``<schema>_phase`` with a JSON payload
``{"migration": id, "phase": name}``. A test checks the two stay in agreement.

The runtime never creates the schema: a missing table raises
``psycopg.errors.UndefinedTable`` and the caller treats it as "nothing known yet".
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from zdmigrate.phases import Phase


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel on which phase changes are announced (as state.py)."""
    return f"{schema}_phase"


def listen(conn: psycopg.Connection[Any], schema: str) -> None:
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(notify_channel(schema))))


def load_phases(conn: psycopg.Connection[Any], schema: str) -> tuple[dict[str, Phase], list[str]]:
    """Every migration's phase; and the raw values that were not a known phase."""
    rows = conn.execute(
        sql.SQL("SELECT id, phase FROM {}").format(sql.Identifier(schema, "migrations"))
    ).fetchall()
    phases: dict[str, Phase] = {}
    unknown: list[str] = []
    for migration, name in rows:
        phase = parse_phase(name)
        if phase is None:
            unknown.append(f"{migration}={name}")
        else:
            phases[migration] = phase
    return phases, unknown


def parse_payload(payload: str) -> tuple[str, Phase] | None:
    """(migration, phase) from a NOTIFY payload, or None if it is not one of ours."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    migration, name = data.get("migration"), data.get("phase")
    phase = parse_phase(name) if isinstance(name, str) else None
    if not isinstance(migration, str) or phase is None:
        return None
    return migration, phase


def parse_phase(name: str) -> Phase | None:
    for phase in Phase:
        if phase.value == name:
            return phase
    return None


def upsert_heartbeat(
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
    conn.execute(
        sql.SQL(
            "INSERT INTO {} AS i (app, instance_id, version, host, pid, source, ttl_seconds, info) "
            "VALUES (%s, %s, %s, %s, %s, 'heartbeat', %s, %s::jsonb) "
            "ON CONFLICT (app, instance_id) DO UPDATE SET version = excluded.version, "
            "host = excluded.host, pid = excluded.pid, source = 'heartbeat', "
            "ttl_seconds = excluded.ttl_seconds, info = excluded.info, last_seen = now()"
        ).format(sql.Identifier(schema, "instances")),
        [app, instance_id, version, host, pid, ttl_seconds, json.dumps(info)],
    )


def delete_instance(
    conn: psycopg.Connection[Any], schema: str, *, app: str, instance_id: str
) -> None:
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE app = %s AND instance_id = %s AND source = 'heartbeat'").format(
            sql.Identifier(schema, "instances")
        ),
        [app, instance_id],
    )
