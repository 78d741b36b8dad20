"""Creating and upgrading zdmigrate's own schema in the target database.

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

Each table has its own module in this package; this one only creates them.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

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
    (
        40,
        [
            # a step is recorded as started before it runs, so a rerun after a kill
            # knows that what it finds (an index half built) is its own leftover
            """ALTER TABLE {schema}.steps ADD COLUMN status text NOT NULL DEFAULT 'done'
                CHECK (status IN ('started','done'))""",
        ],
    ),
]

CURRENT_VERSION = SCHEMA_VERSIONS[-1][0]
_UPGRADE_LOCK_KEY = 0x7A646D  # "zdm": transaction advisory lock for schema upgrades


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
    """A state table as a qualified identifier (for the modules of this package only)."""
    return sql.Identifier(schema, name)
