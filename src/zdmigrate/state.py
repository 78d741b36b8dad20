"""zdmigrate's own schema in the target database: migrations, phase log, steps, fleet.

The schema (``zdmigrate`` by default) is created on first use and upgraded in
place: `SCHEMA_VERSIONS` is an append-only list, and `ensure_schema` applies the
versions a database has not seen yet, under a transaction-level advisory lock so
two processes never upgrade at once.

Tables (version 1):

- ``migrations``: each migration's last completed phase and the checksum of its file;
- ``phase_log``: every advance/rollback attempt: who, when, from, to, outcome, override;
- ``steps``: the steps of an unfinished phase that are already done (for resuming);
- ``backfills``: progress of each backfill (cursor saved with its batch);
- ``instances``: live app instances (heartbeats, declarations, remembered sessions: v3);
- ``run_lock``: who holds the one-run-per-database advisory lock, and since when.

Version 2 adds ``backfill_ranges`` (the key range each backfill worker claimed,
with its own cursor) and ``backfills.rows_updated`` / ``backfills.schema_name``.

Warning: these functions take a psycopg connection and run in the caller's
transaction unless they say otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from zdmigrate.phases import Phase

#: (version, statements). Append only; never edit a released version.
#: `{schema}` is replaced by the quoted schema identifier.
SCHEMA_VERSIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE {schema}.migrations (
                id text PRIMARY KEY,
                phase text NOT NULL DEFAULT 'pending' CHECK (phase IN
                    ('pending','expand','dual-write','backfill','switch-read','contract')),
                checksum text,
                updated_at timestamptz NOT NULL DEFAULT now()
            )""",
            """CREATE TABLE {schema}.phase_log (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                migration_id text NOT NULL,
                action text NOT NULL CHECK (action IN ('advance','rollback')),
                from_phase text NOT NULL,
                to_phase text NOT NULL,
                outcome text NOT NULL CHECK (outcome IN ('started','done','failed','refused')),
                actor text NOT NULL,
                override_reason text,
                message text,
                started_at timestamptz NOT NULL DEFAULT now(),
                finished_at timestamptz
            )""",
            "CREATE INDEX ON {schema}.phase_log (migration_id, id)",
            """CREATE TABLE {schema}.steps (
                migration_id text NOT NULL,
                phase text NOT NULL,
                direction text NOT NULL CHECK (direction IN ('advance','rollback')),
                step_index int NOT NULL,
                step_key text NOT NULL,
                done_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (migration_id, phase, direction, step_index)
            )""",
            """CREATE TABLE {schema}.backfills (
                migration_id text NOT NULL,
                step_key text NOT NULL,
                table_name text NOT NULL,
                status text NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running','paused','done')),
                cursor jsonb,
                rows_done bigint NOT NULL DEFAULT 0,
                rows_total bigint,
                batch_size int,
                started_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                finished_at timestamptz,
                PRIMARY KEY (migration_id, step_key)
            )""",
            """CREATE TABLE {schema}.instances (
                app text NOT NULL,
                instance_id text NOT NULL,
                version text NOT NULL,
                host text,
                pid int,
                source text NOT NULL CHECK (source IN ('heartbeat','declared')),
                started_at timestamptz NOT NULL DEFAULT now(),
                last_seen timestamptz NOT NULL DEFAULT now(),
                ttl_seconds int NOT NULL DEFAULT 60 CHECK (ttl_seconds > 0),
                info jsonb NOT NULL DEFAULT '{{}}'::jsonb,
                PRIMARY KEY (app, instance_id)
            )""",
            """CREATE TABLE {schema}.run_lock (
                id int PRIMARY KEY CHECK (id = 1),
                pid int NOT NULL,
                actor text NOT NULL,
                command text NOT NULL,
                since timestamptz NOT NULL DEFAULT now()
            )""",
        ],
    ),
    (
        2,
        [
            # backfill workers: each claims a disjoint key range; the range's cursor
            # is saved in the same transaction as the batch it covers
            """CREATE TABLE {schema}.backfill_ranges (
                migration_id text NOT NULL,
                step_key text NOT NULL,
                range_no int NOT NULL,
                lower_key jsonb,
                upper_key jsonb,
                cursor jsonb,
                status text NOT NULL DEFAULT 'claimed' CHECK (status IN ('claimed','done')),
                owner text NOT NULL,
                owner_pid int NOT NULL,
                owner_started timestamptz,
                heartbeat timestamptz NOT NULL DEFAULT now(),
                rows_done bigint NOT NULL DEFAULT 0,
                rows_updated bigint NOT NULL DEFAULT 0,
                batches int NOT NULL DEFAULT 0,
                PRIMARY KEY (migration_id, step_key, range_no),
                FOREIGN KEY (migration_id, step_key)
                    REFERENCES {schema}.backfills (migration_id, step_key) ON DELETE CASCADE
            )""",
            """ALTER TABLE {schema}.backfills
                ADD COLUMN rows_updated bigint NOT NULL DEFAULT 0,
                ADD COLUMN schema_name text""",
        ],
    ),
    (
        3,
        [
            # fleet: sessions seen in pg_stat_activity are remembered for a TTL, so
            # an app whose pool is briefly empty still counts as live (fail safe)
            "ALTER TABLE {schema}.instances DROP CONSTRAINT instances_source_check",
            """ALTER TABLE {schema}.instances ADD CONSTRAINT instances_source_check
                CHECK (source IN ('heartbeat','declared','session'))""",
        ],
    ),
]

CURRENT_VERSION = SCHEMA_VERSIONS[-1][0]
_UPGRADE_LOCK_KEY = 0x7A646D  # "zdm": transaction advisory lock for schema upgrades


@dataclass(frozen=True)
class MigrationRow:
    id: str
    phase: Phase
    checksum: str | None
    updated_at: datetime | None


def schema_exists(conn: psycopg.Connection[Any], schema: str) -> bool:
    row = conn.execute(
        "SELECT to_regclass(format('%%I.migrations', %s::text)) IS NOT NULL", [schema]
    ).fetchone()
    return bool(row and row[0])


def ensure_schema(conn: psycopg.Connection[Any], schema: str) -> int:
    """Create or upgrade zdmigrate's schema; returns the version now in place.

    Runs in its own transaction (the connection must not be inside one), under a
    transaction-level advisory lock, so concurrent callers are safe.
    """
    ident = sql.Identifier(schema)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_UPGRADE_LOCK_KEY, schema])
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_version "
                "(version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(ident)
        )
        # versions are numbered ahead by the people who write them and may land out
        # of order: apply every version not applied yet, not only those above the max
        applied = {
            int(r[0])
            for r in conn.execute(
                sql.SQL("SELECT version FROM {}.schema_version").format(ident)
            ).fetchall()
        }
        current = max(applied, default=0)
        for version, statements in sorted(SCHEMA_VERSIONS, key=lambda v: v[0]):
            if version in applied:
                continue
            for statement in statements:
                conn.execute(sql.SQL(statement).format(schema=ident))  # type: ignore[arg-type]
            conn.execute(
                sql.SQL("INSERT INTO {}.schema_version (version) VALUES (%s)").format(ident),
                [version],
            )
            current = max(current, version)
    return current


def table(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, name)


def load_migrations(conn: psycopg.Connection[Any], schema: str) -> dict[str, MigrationRow]:
    rows = conn.execute(
        sql.SQL("SELECT id, phase, checksum, updated_at FROM {}").format(table(schema, "migrations"))
    ).fetchall()
    return {r[0]: MigrationRow(r[0], Phase.parse(r[1]), r[2], r[3]) for r in rows}


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


def log_start(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    migration_id: str,
    action: str,
    from_phase: Phase,
    to_phase: Phase,
    actor: str,
    override_reason: str | None = None,
    outcome: str = "started",
    message: str | None = None,
) -> int:
    row = conn.execute(
        sql.SQL(
            "INSERT INTO {} (migration_id, action, from_phase, to_phase, outcome, actor, "
            "override_reason, message, finished_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
            "CASE WHEN %s = 'started' THEN NULL ELSE now() END) RETURNING id"
        ).format(table(schema, "phase_log")),
        [
            migration_id, action, from_phase.value, to_phase.value, outcome, actor,
            override_reason, message, outcome,
        ],
    ).fetchone()
    assert row is not None
    return int(row[0])


def log_finish(
    conn: psycopg.Connection[Any], schema: str, log_id: int, outcome: str, message: str | None = None
) -> None:
    conn.execute(
        sql.SQL(
            "UPDATE {} SET outcome = %s, message = coalesce(%s, message), finished_at = now() "
            "WHERE id = %s"
        ).format(table(schema, "phase_log")),
        [outcome, message, log_id],
    )


def phase_log(
    conn: psycopg.Connection[Any], schema: str, migration_id: str | None = None
) -> list[dict[str, Any]]:
    query = sql.SQL("SELECT * FROM {} {} ORDER BY id").format(
        table(schema, "phase_log"),
        sql.SQL("WHERE migration_id = %s") if migration_id else sql.SQL(""),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, [migration_id] if migration_id else None)
        return list(cur.fetchall())


def done_steps(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, phase: Phase, direction: str
) -> dict[int, str]:
    rows = conn.execute(
        sql.SQL(
            "SELECT step_index, step_key FROM {} WHERE migration_id = %s AND phase = %s "
            "AND direction = %s"
        ).format(table(schema, "steps")),
        [migration_id, phase.value, direction],
    ).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}


def mark_step_done(
    conn: psycopg.Connection[Any],
    schema: str,
    migration_id: str,
    phase: Phase,
    direction: str,
    index: int,
    key: str,
) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (migration_id, phase, direction, step_index, step_key) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
        ).format(table(schema, "steps")),
        [migration_id, phase.value, direction, index, key],
    )


def clear_steps(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, phases: Iterable[Phase],
    direction: str | None = None,
) -> None:
    names = [p.value for p in phases]
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE migration_id = %s AND phase = ANY(%s) {}").format(
            table(schema, "steps"),
            sql.SQL("AND direction = %s") if direction else sql.SQL(""),
        ),
        [migration_id, names, direction] if direction else [migration_id, names],
    )


def partial_phases(
    conn: psycopg.Connection[Any], schema: str, migration_id: str
) -> list[tuple[Phase, str, int]]:
    """Phases with done steps but not completed: (phase, direction, steps done)."""
    rows = conn.execute(
        sql.SQL(
            "SELECT phase, direction, count(*) FROM {} WHERE migration_id = %s "
            "GROUP BY phase, direction"
        ).format(table(schema, "steps")),
        [migration_id],
    ).fetchall()
    return [(Phase.parse(r[0]), str(r[1]), int(r[2])) for r in rows]


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


def backfill_progress(
    conn: psycopg.Connection[Any], schema: str, migration_ids: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    query = sql.SQL(
        "SELECT migration_id, step_key, table_name, status, rows_done, rows_total, "
        "updated_at FROM {} {} ORDER BY migration_id, started_at"
    ).format(
        table(schema, "backfills"),
        sql.SQL("WHERE migration_id = ANY(%s)") if migration_ids is not None else sql.SQL(""),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, [list(migration_ids)] if migration_ids is not None else None)
        return list(cur.fetchall())


_RUN_LOCK_KEY = 0x7A646E  # "zdn": session advisory lock, one run per database


@dataclass(frozen=True)
class LockHolder:
    pid: int | None
    actor: str | None
    command: str | None
    since: datetime | None
    application_name: str | None = None

    def describe(self) -> str:
        who = self.actor or self.application_name or "unknown"
        what = f"`{self.command}`" if self.command else "a zdmigrate run"
        since = f" since {self.since:%Y-%m-%d %H:%M:%S %Z}" if self.since else ""
        return f"{what} by {who} (backend pid {self.pid}){since}"


def try_run_lock(conn: psycopg.Connection[Any], schema: str) -> LockHolder | None:
    """Take the one-run-per-database lock; None on success, else who holds it.

    Warning: a session-level advisory lock, held by this connection until
    `release_run_lock` or until the connection closes (also when the process is
    killed), so a crashed run never leaves the database locked.
    """
    row = conn.execute(
        "SELECT pg_try_advisory_lock(%s, hashtext(%s))", [_RUN_LOCK_KEY, schema]
    ).fetchone()
    if row and row[0]:
        return None
    return lock_holder(conn, schema)


def record_lock_holder(
    conn: psycopg.Connection[Any], schema: str, *, actor: str, command: str
) -> None:
    """Say who holds the run lock, for the error a second run shows."""
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (id, pid, actor, command) VALUES "
                "(1, pg_backend_pid(), %s, %s) ON CONFLICT (id) DO UPDATE SET "
                "pid = excluded.pid, actor = excluded.actor, "
                "command = excluded.command, since = now()"
            ).format(table(schema, "run_lock")),
            [actor, command],
        )


def lock_holder(conn: psycopg.Connection[Any], schema: str) -> LockHolder:
    """Who holds the run lock now, from pg_locks and the run_lock table."""
    row = conn.execute(
        """
        SELECT l.pid, a.application_name, a.backend_start FROM pg_locks l
        LEFT JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s
          AND l.objid = hashtext(%s)::oid AND l.database = (
              SELECT oid FROM pg_database WHERE datname = current_database())
        """,
        [_RUN_LOCK_KEY, schema],
    ).fetchone()
    pid = row[0] if row else None
    holder = LockHolder(pid, None, None, row[2] if row else None, row[1] if row else None)
    if pid is not None and schema_exists(conn, schema):
        info = conn.execute(
            sql.SQL("SELECT actor, command, since FROM {} WHERE pid = %s").format(
                table(schema, "run_lock")
            ),
            [pid],
        ).fetchone()
        if info:
            holder = LockHolder(pid, info[0], info[1], info[2], holder.application_name)
    return holder


def release_run_lock(conn: psycopg.Connection[Any], schema: str) -> None:
    if conn.closed:
        return
    if schema_exists(conn, schema):
        with conn.transaction():
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE pid = pg_backend_pid()").format(
                    table(schema, "run_lock")
                )
            )
    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [_RUN_LOCK_KEY, schema])
