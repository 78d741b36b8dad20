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

Version 19 lets ``phase_log`` record a skipped target (``action = 'skip-target'``,
``target`` naming it): one database of many left out of a phase on purpose.

Version 14 adds ``instances.writer_pid`` and the two SECURITY DEFINER functions
the runtime's role writes its heartbeat through (``runtime_heartbeat``,
``runtime_unregister``); see docs/security.md.

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
        # numbered after issue 14, ahead of the versions other branches add
        14,
        [
            # the runtime's role writes no table: it calls these two functions, which
            # run as the schema's owner and only ever touch the caller's own rows
            "ALTER TABLE {schema}.instances ADD COLUMN writer_pid int",
            """CREATE FUNCTION {schema}.runtime_heartbeat(
                   p_app text, p_instance_id text, p_version text, p_host text, p_pid int,
                   p_ttl int, p_info jsonb) RETURNS void
               LANGUAGE plpgsql SECURITY DEFINER
               SET search_path = pg_catalog, {schema}, pg_temp
               AS $zdm_runtime_heartbeat$
               DECLARE
                   old_source text;
                   old_version text;
                   old_expires timestamptz;
               BEGIN
                   IF p_app IS NULL OR p_app = '' OR p_version IS NULL OR p_version = ''
                      OR p_instance_id IS NULL OR p_instance_id = '' THEN
                       RAISE EXCEPTION 'a heartbeat needs an app, a version and an instance id'
                           USING ERRCODE = '22023';
                   END IF;
                   IF p_ttl IS NULL OR p_ttl < 1 OR p_ttl > 3600 THEN
                       RAISE EXCEPTION 'a heartbeat''s ttl must be 1 to 3600 seconds'
                           USING ERRCODE = '22023';
                   END IF;
                   IF p_instance_id LIKE 'session:%' OR p_instance_id LIKE 'declared:%' THEN
                       RAISE EXCEPTION 'instance ids session:... and declared:... are not a heartbeat''s'
                           USING ERRCODE = '42501';
                   END IF;
                   SELECT source, version, last_seen + make_interval(secs => ttl_seconds)
                     INTO old_source, old_version, old_expires
                     FROM instances WHERE app = p_app AND instance_id = p_instance_id
                      FOR UPDATE;
                   IF FOUND AND old_expires > now() THEN
                       IF old_source <> 'heartbeat' THEN
                           RAISE EXCEPTION 'instance % of % is a live % row; a heartbeat may not replace it',
                               p_instance_id, p_app, old_source USING ERRCODE = '42501';
                       END IF;
                       IF old_version <> p_version THEN
                           RAISE EXCEPTION 'instance % of % runs % until %; a heartbeat may not change its version',
                               p_instance_id, p_app, old_version, old_expires USING ERRCODE = '42501';
                       END IF;
                   END IF;
                   INSERT INTO instances AS i (app, instance_id, version, host, pid, source,
                                               ttl_seconds, info, writer_pid)
                   VALUES (p_app, p_instance_id, p_version, p_host, p_pid, 'heartbeat', p_ttl,
                           coalesce(p_info, '{{}}'::jsonb), pg_backend_pid())
                   ON CONFLICT (app, instance_id) DO UPDATE
                      SET host = excluded.host, pid = excluded.pid, source = 'heartbeat',
                          version = excluded.version, info = excluded.info,
                          last_seen = now(),
                          -- only the backend that wrote a live row may unregister it; it
                          -- passes to another backend once the writer's is gone (a reconnect)
                          writer_pid = CASE WHEN old_expires > now() AND EXISTS (
                                  SELECT FROM pg_stat_activity WHERE pid = i.writer_pid)
                              THEN i.writer_pid ELSE excluded.writer_pid END,
                          -- a live row is never cut short: it counts at least as long as before
                          ttl_seconds = CASE WHEN old_expires > now()
                              THEN greatest(excluded.ttl_seconds,
                                            ceil(extract(epoch FROM old_expires - now()))::int)
                              ELSE excluded.ttl_seconds END,
                          started_at = CASE WHEN i.version = excluded.version
                                            THEN i.started_at ELSE now() END;
               END
               $zdm_runtime_heartbeat$""",
            """CREATE FUNCTION {schema}.runtime_unregister(p_app text, p_instance_id text)
               RETURNS boolean
               LANGUAGE sql SECURITY DEFINER
               SET search_path = pg_catalog, {schema}, pg_temp
               AS $zdm_runtime_unregister$
                   WITH gone AS (
                       DELETE FROM instances
                        WHERE app = p_app AND instance_id = p_instance_id
                          AND source = 'heartbeat' AND writer_pid = pg_backend_pid()
                       RETURNING 1)
                   SELECT EXISTS (SELECT FROM gone)
               $zdm_runtime_unregister$""",
            # functions are executable by PUBLIC by default: only the roles granted may
            "REVOKE ALL ON FUNCTION {schema}.runtime_heartbeat(text, text, text, text, int, int,"
            " jsonb) FROM PUBLIC",
            "REVOKE ALL ON FUNCTION {schema}.runtime_unregister(text, text) FROM PUBLIC",
        ],
    ),
    (
        # issue 19 (many databases): a skipped target is recorded in the phase log of
        # every other target, naming it
        19,
        [
            "ALTER TABLE {schema}.phase_log ADD COLUMN target text",
            "ALTER TABLE {schema}.phase_log DROP CONSTRAINT phase_log_action_check",
            """ALTER TABLE {schema}.phase_log ADD CONSTRAINT phase_log_action_check
                CHECK (action IN ('advance','rollback','skip-target'))""",
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


#: What the runtime's role needs, and nothing more (see docs/security.md).
_RUNTIME_GRANTS = [
    "GRANT USAGE ON SCHEMA {schema} TO {role}",
    "GRANT SELECT ON {schema}.migrations TO {role}",
    "GRANT EXECUTE ON FUNCTION {schema}.runtime_heartbeat(text, text, text, text, int, int, "
    "jsonb) TO {role}",
    "GRANT EXECUTE ON FUNCTION {schema}.runtime_unregister(text, text) TO {role}",
]


def runtime_grants(schema: str, role: str) -> list[sql.Composed]:
    """The GRANT statements that let `role` run `zdmigrate.runtime`, and nothing more.

    It may read the phases and write and delete its own heartbeat rows through
    two SECURITY DEFINER functions; it may write no table of the schema.
    """
    return [
        sql.SQL(statement).format(schema=sql.Identifier(schema), role=sql.Identifier(role))
        for statement in _RUNTIME_GRANTS
    ]


def grant_runtime(conn: psycopg.Connection[Any], schema: str, role: str) -> None:
    """Run `runtime_grants` (as the schema's owner, after `ensure_schema`)."""
    with conn.transaction():
        for statement in runtime_grants(schema, role):
            conn.execute(statement)


def table(schema: str, name: str) -> sql.Identifier:
    """A state table as a qualified identifier (for the modules of this package only)."""
    return sql.Identifier(schema, name)
