"""The operator's pause/resume switch of running backfills, and their stored progress.

Pausing flips ``backfills.status`` to ``paused``; every worker, in every process,
sees it at its next batch or claim, finishes nothing more and waits (keeping its
range) until the status is ``running`` again. A step that has not started yet
can be paused in advance: its row is created paused.
"""

from __future__ import annotations

from typing import Any

import psycopg

from zdmigrate.state import Store
from zdmigrate.steps import BackfillStep


def set_paused(
    conn: psycopg.Connection[Any], state_schema: str, migration_id: str,
    steps: list[BackfillStep], paused: bool,
) -> int:
    """Pause (or resume) the backfills of `steps`; returns how many rows changed.

    Runs in its own transaction; a finished backfill stays ``done``.
    """
    store = Store(conn, state_schema)
    store.ensure_schema()
    changed = 0
    with conn.transaction():
        for step in steps:
            if paused:
                changed += store.backfills.pause(migration_id, step.key, step.table, step.schema)
            else:
                changed += store.backfills.resume(migration_id, step.key)
    return changed


def progress(
    conn: psycopg.Connection[Any], state_schema: str, migration_ids: list[str] | None = None
) -> list[dict[str, Any]]:
    """Stored progress of backfills (for `zdmigrate status`), with a percentage."""
    rows = Store(conn, state_schema).backfills.progress(migration_ids)
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
    store = Store(conn, state_schema)
    store.ensure_schema()
    with conn.transaction():
        return store.backfills.delete_finished(migration_id, [step.key for step in steps])
