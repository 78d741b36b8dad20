"""The ``phase_log`` table: every advance/rollback attempt: who, when, from, to, outcome, override;
and every target skipped on purpose (``skip-target``, docs/many-databases.md).

Warning: these functions run in the caller's transaction.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from zdmigrate.phases import Phase
from zdmigrate.state.schema import table


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
    target: str | None = None,
) -> int:
    row = conn.execute(
        sql.SQL(
            "INSERT INTO {} (migration_id, action, from_phase, to_phase, outcome, actor, "
            "override_reason, message, target, finished_at) VALUES (%s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, CASE WHEN %s = 'started' THEN NULL ELSE now() END) RETURNING id"
        ).format(table(schema, "phase_log")),
        [
            migration_id, action, from_phase.value, to_phase.value, outcome, actor,
            override_reason, message, target, outcome,
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


def log_skip(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    migration_id: str,
    target: str,
    from_phase: Phase,
    to_phase: Phase,
    actor: str,
    reason: str,
) -> int:
    """Record that `target` (another database) was left out of this phase on purpose."""
    return log_start(
        conn, schema, migration_id=migration_id, action="skip-target", from_phase=from_phase,
        to_phase=to_phase, actor=actor, override_reason=reason, outcome="done",
        message=f"target {target} skipped: {reason}", target=target,
    )


def skipped_targets(conn: psycopg.Connection[Any], schema: str) -> list[dict[str, Any]]:
    """Every skip recorded here, oldest first: migration_id, target, from/to phase, actor,
    reason, at."""
    query = sql.SQL(
        "SELECT migration_id, target, from_phase, to_phase, actor, override_reason AS reason, "
        "started_at AS at FROM {} WHERE action = 'skip-target' ORDER BY id"
    ).format(table(schema, "phase_log"))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query)
        return list(cur.fetchall())
