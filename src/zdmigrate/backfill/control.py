"""The operator's pause/resume switch of running backfills, and their stored progress.

Pausing flips ``backfills.status`` to ``paused``; every worker, in every process,
sees it at its next batch or claim, finishes nothing more and waits (keeping its
range) until the status is ``running`` again. A step that has not started yet
can be paused in advance: its row is created paused.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from zdmigrate.state import backfill_progress, ensure_schema
from zdmigrate.steps import BackfillStep


def set_paused(
    conn: psycopg.Connection[Any], state_schema: str, migration_id: str,
    steps: list[BackfillStep], paused: bool,
) -> int:
    """Pause (or resume) the backfills of `steps`; returns how many rows changed.

    Runs in its own transaction; a finished backfill stays ``done``.
    """
    ensure_schema(conn, state_schema)
    backfills = sql.Identifier(state_schema, "backfills")
    changed = 0
    with conn.transaction():
        for step in steps:
            if paused:
                cur = conn.execute(
                    sql.SQL(
                        "INSERT INTO {} AS b (migration_id, step_key, table_name, schema_name, "
                        "status) VALUES (%s, %s, %s, %s, 'paused') ON CONFLICT (migration_id, "
                        "step_key) DO UPDATE SET status = 'paused', updated_at = now() "
                        "WHERE b.status = 'running'"
                    ).format(backfills),
                    [migration_id, step.key, step.table, step.schema],
                )
            else:
                cur = conn.execute(
                    sql.SQL(
                        "UPDATE {} SET status = 'running', updated_at = now() "
                        "WHERE migration_id = %s AND step_key = %s AND status = 'paused'"
                    ).format(backfills),
                    [migration_id, step.key],
                )
            changed += max(cur.rowcount, 0)
    return changed


def progress(
    conn: psycopg.Connection[Any], state_schema: str, migration_ids: list[str] | None = None
) -> list[dict[str, Any]]:
    """Stored progress of backfills (for `zdmigrate status`), with a percentage."""
    rows = backfill_progress(conn, state_schema, migration_ids)
    for row in rows:
        total, done = row.get("rows_total"), row.get("rows_done") or 0
        if row.get("status") == "done":
            row["percent"] = 100.0
        elif total:
            row["percent"] = round(min(100.0, 100.0 * done / max(total, done, 1)), 1)
        else:
            row["percent"] = None
    return rows


def restart_finished(
    conn: psycopg.Connection[Any], state_schema: str, migration_id: str,
    steps: list[BackfillStep],
) -> int:
    """Forget the progress of the finished backfills of `steps`, so the next run walks
    the whole table again (only rows still matching `where` are written); returns how
    many were reset. Their claimed ranges go with them."""
    ensure_schema(conn, state_schema)
    with conn.transaction():
        cur = conn.execute(
            sql.SQL(
                "DELETE FROM {} WHERE migration_id = %s AND step_key = ANY(%s) "
                "AND status = 'done'"
            ).format(sql.Identifier(state_schema, "backfills")),
            [migration_id, [step.key for step in steps]],
        )
    return cur.rowcount
