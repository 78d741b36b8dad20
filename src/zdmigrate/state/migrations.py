"""The ``migrations`` table: each migration's last completed phase, and phase-change notices.

A phase change is announced on the channel ``<schema>_phase`` with the JSON
payload ``{"migration": id, "phase": name}``; the runtime's phase cache listens.

Warning: these functions run in the caller's transaction; a NOTIFY is delivered
when that transaction commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from zdmigrate.phases import Phase
from zdmigrate.state.schema import table


@dataclass(frozen=True)
class MigrationRow:
    id: str
    phase: Phase
    checksum: str | None
    updated_at: datetime | None


def load_migrations(conn: psycopg.Connection[Any], schema: str) -> dict[str, MigrationRow]:
    rows = conn.execute(
        sql.SQL("SELECT id, phase, checksum, updated_at FROM {}").format(table(schema, "migrations"))
    ).fetchall()
    return {r[0]: MigrationRow(r[0], Phase.parse(r[1]), r[2], r[3]) for r in rows}


def load_phases(conn: psycopg.Connection[Any], schema: str) -> tuple[dict[str, Phase], list[str]]:
    """Every migration's phase; and the raw values that were not a known phase.

    Unlike `load_migrations`, an unknown value is reported instead of raised
    (the runtime keeps running on a state schema newer than itself). A missing
    table raises ``psycopg.errors.UndefinedTable``: the schema is never created here.
    """
    rows = conn.execute(
        sql.SQL("SELECT id, phase FROM {}").format(table(schema, "migrations"))
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


def add_pending(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, checksum: str
) -> None:
    """Record `migration_id` as pending if it has no row yet (an existing row is kept)."""
    conn.execute(
        sql.SQL("INSERT INTO {} (id, phase, checksum) VALUES (%s, 'pending', %s) "
                "ON CONFLICT (id) DO NOTHING").format(table(schema, "migrations")),
        [migration_id, checksum],
    )


def set_phase(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, phase: Phase, checksum: str
) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} AS m (id, phase, checksum) VALUES (%s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET phase = excluded.phase, "
            "checksum = excluded.checksum, updated_at = now()"
        ).format(table(schema, "migrations")),
        [migration_id, phase.value, checksum],
    )


def set_checksum(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, checksum: str
) -> None:
    conn.execute(
        sql.SQL("UPDATE {} SET checksum = %s WHERE id = %s").format(table(schema, "migrations")),
        [checksum, migration_id],
    )


# -- phase-change notices ------------------------------------------------------------


def notify_phase(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, phase: Phase
) -> None:
    """NOTIFY listeners (the runtime's phase cache) of a phase change, on commit."""
    conn.execute(
        "SELECT pg_notify(%s, %s)",
        [notify_channel(schema), json.dumps({"migration": migration_id, "phase": phase.value})],
    )


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel on which phase changes are announced."""
    return f"{schema}_phase"


def listen(conn: psycopg.Connection[Any], schema: str) -> None:
    """LISTEN on `notify_channel`; the connection must be in autocommit to receive."""
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(notify_channel(schema))))


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
    """The phase called `name`, or None (never raises: a newer writer may know more)."""
    for phase in Phase:
        if phase.value == name:
            return phase
    return None
