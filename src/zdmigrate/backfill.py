"""The backfill engine: batched, resumable copies of old data into the new shape.

This is the foundation's simple version: keyset pagination on the primary key,
one short transaction per batch, the cursor saved in the same transaction as the
batch it covers. The full engine (adaptive batches, throttles, workers) replaces it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from zdmigrate import db
from zdmigrate.config import Settings
from zdmigrate.errors import BadInput
from zdmigrate.state import table as state_table
from zdmigrate.steps import BackfillStep


@dataclass
class BackfillResult:
    rows_done: int = 0
    batches: int = 0
    seconds: float = 0.0


@dataclass
class Verification:
    mismatches: int
    sample_keys: list[Any] = field(default_factory=list)


def _target(step: BackfillStep) -> sql.Identifier:
    return sql.Identifier(step.schema, step.table) if step.schema else sql.Identifier(step.table)


def primary_key(conn: psycopg.Connection[Any], step: BackfillStep) -> list[str]:
    rows = conn.execute(
        """
        SELECT a.attname FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = to_regclass(%s) AND i.indisprimary
        ORDER BY array_position(i.indkey, a.attnum)
        """,
        [_target(step).as_string(conn)],
    ).fetchall()
    if not rows:
        raise BadInput(f"backfill of {step.qualified_table}: the table has no primary key")
    return [r[0] for r in rows]


def run_backfill(
    settings: Settings,
    *,
    migration_id: str,
    step: BackfillStep,
    workers: int = 1,
    reporter: Callable[[dict[str, Any]], None] | None = None,
    batch_size: int = 1000,
    **options: Any,
) -> BackfillResult:
    """Run or resume the backfill `step` of `migration_id` to the end."""
    result = BackfillResult()
    started = time.monotonic()
    schema = settings.state_schema
    with db.connect(settings, application_name="zdmigrate backfill") as conn:
        keys = primary_key(conn, step)
        key_cols = sql.SQL(", ").join(map(sql.Identifier, keys))
        progress = state_table(schema, "backfills")
        with conn.transaction():
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (migration_id, step_key, table_name) VALUES (%s, %s, %s) "
                    "ON CONFLICT DO NOTHING"
                ).format(progress),
                [migration_id, step.key, step.qualified_table],
            )
        row = conn.execute(
            sql.SQL("SELECT cursor, rows_done FROM {} WHERE migration_id = %s AND step_key = %s")
            .format(progress), [migration_id, step.key],
        ).fetchone()
        cursor = row[0] if row else None
        result.rows_done = int(row[1]) if row else 0
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), sql.SQL(e))  # type: ignore[arg-type]
            for c, e in step.set.items()
        )
        condition = sql.SQL(step.where) if step.where else sql.SQL("true")  # type: ignore[arg-type]
        while True:
            after = (
                sql.SQL("WHERE ({}) > ({})").format(
                    key_cols, sql.SQL(", ").join(sql.Placeholder() * len(keys))
                )
                if cursor is not None else sql.SQL("")
            )
            with conn.transaction():
                bounds = conn.execute(
                    sql.SQL("SELECT {k} FROM {t} {after} ORDER BY {k} LIMIT %s").format(
                        k=key_cols, t=_target(step), after=after
                    ),
                    [*(cursor or []), batch_size],
                ).fetchall()
                if not bounds:
                    conn.execute(
                        sql.SQL("UPDATE {} SET status = 'done', finished_at = now(), "
                                "updated_at = now() WHERE migration_id = %s AND step_key = %s")
                        .format(progress), [migration_id, step.key],
                    )
                    break
                last = list(bounds[-1])
                first = list(bounds[0])
                updated = conn.execute(
                    sql.SQL("UPDATE {t} SET {a} WHERE ({k}) >= ({lo}) AND ({k}) <= ({hi}) "
                            "AND ({c})").format(
                        t=_target(step), a=assignments, k=key_cols, c=condition,
                        lo=sql.SQL(", ").join(sql.Placeholder() * len(keys)),
                        hi=sql.SQL(", ").join(sql.Placeholder() * len(keys)),
                    ),
                    [*first, *last],
                ).rowcount
                result.rows_done += max(updated, 0)
                result.batches += 1
                cursor = last
                conn.execute(
                    sql.SQL("UPDATE {} SET cursor = %s, rows_done = %s, updated_at = now() "
                            "WHERE migration_id = %s AND step_key = %s").format(progress),
                    [json.dumps(cursor, default=str), result.rows_done, migration_id, step.key],
                )
            if reporter is not None:
                reporter({"table": step.qualified_table, "rows_done": result.rows_done})
    result.seconds = time.monotonic() - started
    return result


def verify_backfill(
    conn: psycopg.Connection[Any], step: BackfillStep, *, sample: int = 5
) -> Verification:
    """Count rows whose new shape disagrees with the old (`verify`, else `where`)."""
    condition = step.verify or step.where
    if not condition:
        return Verification(0)
    keys = primary_key(conn, step)
    key_cols = sql.SQL(", ").join(map(sql.Identifier, keys))
    cond = sql.SQL(condition)  # type: ignore[arg-type]
    count_row = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {}").format(_target(step), cond)
    ).fetchone()
    mismatches = int(count_row[0]) if count_row else 0
    samples = []
    if mismatches:
        samples = [
            r[0] if len(r) == 1 else list(r)
            for r in conn.execute(
                sql.SQL("SELECT {k} FROM {t} WHERE {c} ORDER BY {k} LIMIT %s").format(
                    k=key_cols, t=_target(step), c=cond
                ),
                [sample],
            ).fetchall()
        ]
    return Verification(mismatches, samples)
