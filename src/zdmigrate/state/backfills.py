"""The ``backfills`` and ``backfill_ranges`` tables: each backfill's progress and its workers' ranges.

One ``backfills`` row per backfill step holds the *frontier* in its cursor:
where the unclaimed part of the table begins. Each ``backfill_ranges`` row is
the key range one worker claimed, with its own cursor and counts. The claiming
protocol itself (leases, take-over, the fence) is `zdmigrate.backfill.claims`;
this module only reads and writes the rows.

Warning: these functions run in the caller's transaction; the claim and batch
functions expect the caller to hold it open around them (row locks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from zdmigrate.state.schema import table

if TYPE_CHECKING:
    from typing_extensions import LiteralString


@dataclass(frozen=True)
class BackfillRow:
    status: str
    cursor: dict[str, Any]
    rows_done: int
    rows_updated: int
    rows_total: int | None


@dataclass(frozen=True)
class Totals:
    """The backfill's counts across every worker, as of a batch's commit."""

    rows_done: int
    rows_updated: int
    rows_total: int | None
    status: str


@dataclass(frozen=True)
class RangeRow:
    range_no: int
    lower: Any
    upper: Any
    cursor: Any


# -- reports ------------------------------------------------------------------------


def backfill_progress(
    conn: psycopg.Connection[Any], schema: str, migration_ids: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    query = sql.SQL(
        "SELECT migration_id, step_key, table_name, status, rows_done, rows_total, "
        "updated_at, coalesce(cursor->'info', '{{}}'::jsonb) AS info "
        "FROM {} {} ORDER BY migration_id, started_at"
    ).format(
        table(schema, "backfills"),
        sql.SQL("WHERE migration_id = ANY(%s)") if migration_ids is not None else sql.SQL(""),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, [list(migration_ids)] if migration_ids is not None else None)
        return list(cur.fetchall())


def live_workers(conn: psycopg.Connection[Any], schema: str) -> dict[tuple[str, str], int]:
    """Per (migration_id, step_key): claimed ranges whose owner's session is still connected.

    A backfill marked running with none is not being worked on: its process was
    killed (or lost its connection) and a rerun resumes it. Sessions are matched
    on pid and backend start, so a reused pid does not count.
    """
    found = conn.execute(
        "SELECT to_regclass(format('%%I.backfill_ranges', %s::text)) IS NOT NULL", [schema]
    ).fetchone()
    if not found or not found[0]:
        return {}
    rows = conn.execute(
        sql.SQL(
            "SELECT r.migration_id, r.step_key, count(*) FILTER (WHERE EXISTS ("
            "  SELECT FROM pg_stat_activity a WHERE a.pid = r.owner_pid"
            "  AND (a.backend_start IS NULL OR r.owner_started IS NULL"
            "       OR a.backend_start = r.owner_started))) "
            "FROM {} r WHERE r.status = 'claimed' GROUP BY 1, 2"
        ).format(table(schema, "backfill_ranges"))
    ).fetchall()
    return {(row[0], row[1]): int(row[2]) for row in rows}


# -- the operator's switches ----------------------------------------------------------


def pause(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str,
    table_name: str, schema_name: str | None,
) -> int:
    """Pause a running backfill, or create its row paused if it has not started; rows changed."""
    cur = conn.execute(
        sql.SQL(
            "INSERT INTO {} AS b (migration_id, step_key, table_name, schema_name, "
            "status) VALUES (%s, %s, %s, %s, 'paused') ON CONFLICT (migration_id, "
            "step_key) DO UPDATE SET status = 'paused', updated_at = now() "
            "WHERE b.status = 'running'"
        ).format(table(schema, "backfills")),
        [migration_id, step_key, table_name, schema_name],
    )
    return max(cur.rowcount, 0)


def resume(conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str) -> int:
    """Resume a paused backfill; rows changed."""
    cur = conn.execute(
        sql.SQL(
            "UPDATE {} SET status = 'running', updated_at = now() "
            "WHERE migration_id = %s AND step_key = %s AND status = 'paused'"
        ).format(table(schema, "backfills")),
        [migration_id, step_key],
    )
    return max(cur.rowcount, 0)


def delete_finished(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_keys: Sequence[str]
) -> int:
    """Forget finished backfills of these steps (their ranges go with them); rows deleted."""
    cur = conn.execute(
        sql.SQL(
            "DELETE FROM {} WHERE migration_id = %s AND step_key = ANY(%s) "
            "AND status = 'done'"
        ).format(table(schema, "backfills")),
        [migration_id, list(step_keys)],
    )
    return cur.rowcount


def connected_workers(
    conn: psycopg.Connection[Any], schema: str, migration_id: str
) -> list[dict[str, Any]]:
    """Workers holding a claimed range of `migration_id` whose connection is still open.

    Each as ``{"step_key", "range_no", "owner", "pid"}``. A worker whose backend is
    gone (killed, crashed) is not live: its range waits for a taker, its cursor is
    only progress. A backend in ``pg_stat_activity`` under the recorded pid (and the
    same start time, where this role may see it) is live, whatever its heartbeat.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                """
                SELECT r.step_key, r.range_no, r.owner, r.owner_pid AS pid FROM {} r
                WHERE r.migration_id = %s AND r.status = 'claimed'
                  AND EXISTS (
                       SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.owner_pid
                       AND (a.backend_start IS NULL OR r.owner_started IS NULL
                            OR a.backend_start = r.owner_started))
                ORDER BY r.step_key, r.range_no
                """
            ).format(table(schema, "backfill_ranges")),
            [migration_id],
        )
        return list(cur.fetchall())


def delete_migration(conn: psycopg.Connection[Any], schema: str, migration_id: str) -> None:
    """Forget every backfill of a migration (its backfill phase was rolled back)."""
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE migration_id = %s").format(table(schema, "backfills")),
        [migration_id],
    )


# -- the backfill row ---------------------------------------------------------------


def open_backfill(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str, *,
    table_name: str, schema_name: str, cursor: dict[str, Any], rows_total: int | None,
    batch_size: int,
) -> None:
    """Create the backfill's row if this is its first run (a `--pause` row gets its cursor)."""
    conn.execute(
        sql.SQL(
            "INSERT INTO {} AS b (migration_id, step_key, table_name, schema_name, status, "
            "cursor, rows_total, batch_size) VALUES (%s, %s, %s, %s, 'running', %s, %s, %s) "
            "ON CONFLICT (migration_id, step_key) DO UPDATE SET "
            # keep the first estimate: a resume would estimate from a table the
            # backfill's own updates have bloated (the planner scales by its size)
            "rows_total = coalesce(b.rows_total, excluded.rows_total), "
            # a row created by `--pause` before the first run has no cursor yet
            "cursor = CASE WHEN b.cursor ? 'mode' THEN b.cursor ELSE excluded.cursor END"
        ).format(table(schema, "backfills")),
        [migration_id, step_key, table_name, schema_name, Jsonb(cursor), rows_total, batch_size],
    )


def read_backfill(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str
) -> BackfillRow | None:
    row = conn.execute(
        sql.SQL(
            "SELECT status, cursor, rows_done, rows_updated, rows_total FROM {} "
            "WHERE migration_id = %s AND step_key = %s"
        ).format(table(schema, "backfills")),
        [migration_id, step_key],
    ).fetchone()
    if row is None:
        return None
    return BackfillRow(row[0], dict(row[1] or {}), int(row[2]), int(row[3]), row[4])


def merge_info(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str,
    info: dict[str, Any],
) -> None:
    """Merge `info` (what a run chose and why, sizes) into the backfill's ``cursor.info``."""
    _update_backfill(
        conn, schema, migration_id, step_key,
        "cursor = jsonb_set(cursor, '{info}', coalesce(cursor->'info', '{}'::jsonb) || %s)",
        [Jsonb(info)],
    )


def set_batch_size(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str, size: int
) -> None:
    _update_backfill(conn, schema, migration_id, step_key, "batch_size = %s", [size])


def lock_frontier(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str
) -> dict[str, Any] | None:
    """The backfill's cursor, with its row locked until the transaction ends; None when
    the row is gone (a rollback deleted it since the caller read it)."""
    row = conn.execute(
        sql.SQL(
            "SELECT cursor FROM {} WHERE migration_id = %s AND step_key = %s FOR UPDATE"
        ).format(table(schema, "backfills")),
        [migration_id, step_key],
    ).fetchone()
    return None if row is None else dict(row[0] or {})


def set_frontier(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str,
    cursor: dict[str, Any],
) -> None:
    _update_backfill(conn, schema, migration_id, step_key, "cursor = %s, updated_at = now()",
                     [Jsonb(cursor)])


def finish_backfill(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str
) -> None:
    _update_backfill(
        conn, schema, migration_id, step_key,
        "status = 'done', finished_at = now(), updated_at = now(), rows_total = rows_done", [],
    )


def _update_backfill(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str,
    assignments: LiteralString, params: list[Any],
) -> None:
    """``UPDATE`` one backfill's row: `assignments` is the SET list (constant SQL of this
    module, never built from input), with a %s placeholder for each of `params`."""
    conn.execute(
        sql.SQL("UPDATE {} SET {} WHERE migration_id = %s AND step_key = %s").format(
            table(schema, "backfills"), sql.SQL(assignments)),
        [*params, migration_id, step_key],
    )


# -- the ranges workers claim ---------------------------------------------------------


def add_range(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str, *,
    lower: Any, upper: Any, owner: str,
) -> int:
    """Claim a new range [lower, upper) for `owner` (this backend); returns its number."""
    ranges = table(schema, "backfill_ranges")
    number = conn.execute(
        sql.SQL(
            "SELECT coalesce(max(range_no), 0) + 1 FROM {} "
            "WHERE migration_id = %s AND step_key = %s"
        ).format(ranges),
        [migration_id, step_key],
    ).fetchone()
    assert number is not None
    range_no = int(number[0])
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (migration_id, step_key, range_no, lower_key, upper_key, "
            "cursor, owner, owner_pid, owner_started) VALUES (%s, %s, %s, %s, %s, %s, "
            "%s, pg_backend_pid(), (SELECT backend_start FROM pg_stat_activity "
            "WHERE pid = pg_backend_pid()))"
        ).format(ranges),
        [migration_id, step_key, range_no, Jsonb(lower), Jsonb(upper), Jsonb(lower), owner],
    )
    return range_no


def claimed_ranges(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str
) -> int:
    """How many ranges some worker still holds (not done)."""
    left = conn.execute(
        sql.SQL(
            "SELECT count(*) FROM {} WHERE migration_id = %s AND step_key = %s "
            "AND status = 'claimed'"
        ).format(table(schema, "backfill_ranges")),
        [migration_id, step_key],
    ).fetchone()
    return int(left[0]) if left else 0


def take_over_range(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str, *,
    owner: str, lease: float,
) -> RangeRow | None:
    """Take a range whose worker is gone or silent for longer than `lease` seconds.

    ``FOR UPDATE SKIP LOCKED``: claimers never wait on each other.
    """
    ranges = table(schema, "backfill_ranges")
    row = conn.execute(
        sql.SQL(
            """
            SELECT r.range_no, r.lower_key, r.upper_key, r.cursor FROM {} r
            WHERE r.migration_id = %s AND r.step_key = %s AND r.status = 'claimed'
              AND (r.heartbeat < now() - make_interval(secs => %s)
                   OR NOT EXISTS (
                       SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.owner_pid
                       AND (a.backend_start IS NULL OR r.owner_started IS NULL
                            OR a.backend_start = r.owner_started)))
            ORDER BY r.range_no LIMIT 1 FOR UPDATE OF r SKIP LOCKED
            """
        ).format(ranges),
        [migration_id, step_key, lease],
    ).fetchone()
    if row is None:
        return None
    conn.execute(
        sql.SQL(
            "UPDATE {} SET owner = %s, owner_pid = pg_backend_pid(), owner_started = "
            "(SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()), "
            "heartbeat = now() WHERE migration_id = %s AND step_key = %s AND range_no = %s"
        ).format(ranges),
        [owner, migration_id, step_key, row[0]],
    )
    return RangeRow(int(row[0]), row[1], row[2], row[3])


def lock_range_owner(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str, range_no: int
) -> str | None:
    """The range's owner, with its row locked until the transaction ends (None: no range)."""
    row = conn.execute(
        sql.SQL(
            "SELECT owner FROM {} WHERE migration_id = %s AND step_key = %s "
            "AND range_no = %s FOR UPDATE"
        ).format(table(schema, "backfill_ranges")),
        [migration_id, step_key, range_no],
    ).fetchone()
    return None if row is None else str(row[0])


def save_batch(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str,
    range_no: int, *, cursor: Any, scanned: int, updated: int, range_done: bool,
) -> Totals:
    """Record a batch's cursor and counts on its range and its backfill."""
    conn.execute(
        sql.SQL(
            "UPDATE {} SET cursor = %s, rows_done = rows_done + %s, "
            "rows_updated = rows_updated + %s, batches = batches + 1, heartbeat = now(), "
            "status = CASE WHEN %s THEN 'done' ELSE status END "
            "WHERE migration_id = %s AND step_key = %s AND range_no = %s"
        ).format(table(schema, "backfill_ranges")),
        [Jsonb(cursor), scanned, updated, range_done, migration_id, step_key, range_no],
    )
    row = conn.execute(
        sql.SQL(
            "UPDATE {} SET rows_done = rows_done + %s, rows_updated = rows_updated + %s, "
            "updated_at = now() WHERE migration_id = %s AND step_key = %s "
            "RETURNING rows_done, rows_updated, rows_total, status"
        ).format(table(schema, "backfills")),
        [scanned, updated, migration_id, step_key],
    ).fetchone()
    assert row is not None
    return Totals(int(row[0]), int(row[1]), row[2], str(row[3]))


def range_heartbeat(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, step_key: str,
    range_no: int, owner: str,
) -> None:
    conn.execute(
        sql.SQL(
            "UPDATE {} SET heartbeat = now() WHERE migration_id = %s AND step_key = %s "
            "AND range_no = %s AND owner = %s"
        ).format(table(schema, "backfill_ranges")),
        [migration_id, step_key, range_no, owner],
    )
