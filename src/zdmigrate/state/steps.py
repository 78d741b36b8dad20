"""The ``steps`` table: the steps of an unfinished phase that are started or done (for resuming).

A step that is not atomic (CONCURRENTLY) is marked started, in a transaction of
its own, before it runs; every step is marked done when it finished, so a rerun after a kill tells its own leftovers from a schema
it never touched.

Warning: these functions run in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from zdmigrate.phases import Phase
from zdmigrate.state.schema import table


def done_steps(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, phase: Phase, direction: str
) -> dict[int, str]:
    """The steps of a phase recorded done: index -> step key."""
    return _steps_with_status(conn, schema, migration_id, phase, direction, "done")


def started_steps(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, phase: Phase, direction: str
) -> dict[int, str]:
    """Steps started and not done: a run died while they ran (or a step failed)."""
    return _steps_with_status(conn, schema, migration_id, phase, direction, "started")


def _steps_with_status(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, phase: Phase, direction: str,
    status: str,
) -> dict[int, str]:
    rows = conn.execute(
        sql.SQL(
            "SELECT step_index, step_key FROM {} WHERE migration_id = %s AND phase = %s "
            "AND direction = %s AND status = %s"
        ).format(table(schema, "steps")),
        [migration_id, phase.value, direction, status],
    ).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}


def mark_step_started(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, phase: Phase, direction: str,
    index: int, key: str,
) -> None:
    """Record a step started (kept as it is when it is marked already)."""
    _mark_step(conn, schema, (migration_id, phase, direction, index, key), "started",
               sql.SQL("ON CONFLICT DO NOTHING"))


def mark_step_done(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, phase: Phase, direction: str,
    index: int, key: str,
) -> None:
    """Record a step done (a started mark becomes done)."""
    _mark_step(conn, schema, (migration_id, phase, direction, index, key), "done", sql.SQL(
        "ON CONFLICT (migration_id, phase, direction, step_index) DO UPDATE SET "
        "status = 'done', step_key = excluded.step_key, done_at = now()"
    ))


def _mark_step(
    conn: psycopg.Connection[Any], schema: str, step: tuple[str, Phase, str, int, str],
    status: str, on_conflict: sql.SQL,
) -> None:
    migration_id, phase, direction, index, key = step
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (migration_id, phase, direction, step_index, step_key, status) "
            "VALUES (%s, %s, %s, %s, %s, %s) {}"
        ).format(table(schema, "steps"), on_conflict),
        [migration_id, phase.value, direction, index, key, status],
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
