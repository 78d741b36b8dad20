"""Data problems: a step that fails on the data, told as rows counted and a sample (exit 2).

When VALIDATE CONSTRAINT finds violating rows, SET NOT NULL finds NULLs, a unique
index finds duplicates, or a DROP finds objects that depend on what it drops,
the failure is not operational: rerunning will not help until the data or the
schema changes. `diagnose` turns such an error into a `DataProblem` that says
how many rows are at fault and shows a few, read with the constraint's own
definition from the catalog.

Warning: counting runs a query over the table (the one the failed step just
scanned), under a statement_timeout of its own; if that runs out, the problem is
reported without a count.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from zdmigrate.errors import DataProblem, first_line

#: SQLSTATEs that mean "the data (or dependent objects) stop this step".
DATA_ERRORS: tuple[type[psycopg.Error], ...] = (
    psycopg.errors.IntegrityError,  # class 23: check, foreign key, unique, not null, exclusion
    psycopg.errors.DependentObjectsStillExist,  # 2BP01
)
SAMPLE = 5
_COUNT_TIMEOUT = "30s"


def diagnose(
    conn: psycopg.Connection[Any], exc: psycopg.Error, where: str, statement: str,
    *, concurrent: bool = False,
) -> DataProblem:
    """A DataProblem for `exc`, with the offending rows counted and sampled where possible.

    `concurrent`: the step ran outside a transaction (CREATE INDEX CONCURRENTLY),
    so a failed build left an INVALID index, which the next run drops first.
    """
    message = first_line(exc)
    problems: list[str] = []
    try:
        problems = _offending_rows(conn, exc)
    except psycopg.Error as count_error:
        if not conn.autocommit and not conn.closed:
            conn.rollback()
        problems = [f"(could not count the offending rows: {first_line(count_error)[:200]})"]
    detail = exc.diag.message_detail
    if detail and not problems:
        problems = [line for line in detail.splitlines() if line.strip()]
    short = " ".join(statement.split())
    applied = ("the INVALID index the failed build left is dropped by the next run" if concurrent
               else "nothing of this step was applied")
    return DataProblem(
        f"{where}[{exc.sqlstate}] {message}; {applied}\n"
        f"  statement: {short[:300]}",
        problems,
        hint="fix the rows (or the objects) listed, then run the same command again",
    )


def _offending_rows(conn: psycopg.Connection[Any], exc: psycopg.Error) -> list[str]:
    diag = exc.diag
    if not diag.table_name or not diag.schema_name:
        return []
    table = sql.Identifier(diag.schema_name, diag.table_name)
    condition: sql.Composable | None = None
    if isinstance(exc, psycopg.errors.NotNullViolation) and diag.column_name:
        condition = sql.SQL("{} IS NULL").format(sql.Identifier(diag.column_name))
    elif isinstance(exc, (psycopg.errors.CheckViolation, psycopg.errors.ForeignKeyViolation)):
        condition = _violation(conn, diag.schema_name, diag.table_name, diag.constraint_name)
    if condition is None:
        return []
    with conn.transaction():
        conn.execute("SELECT set_config('statement_timeout', %s, true)", [_COUNT_TIMEOUT])
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} AS t WHERE {}").format(table, condition)
        ).fetchone()
        sample = conn.execute(
            sql.SQL("SELECT to_jsonb(t)::text FROM {} AS t WHERE {} LIMIT {}").format(
                table, condition, sql.Literal(SAMPLE))
        ).fetchall()
    count = row[0] if row else 0
    return [f"{count} row(s) of {diag.schema_name}.{diag.table_name} violate it",
            *(f"e.g. {r[0]}" for r in sample)]


def _violation(
    conn: psycopg.Connection[Any], schema: str, table: str, constraint: str | None
) -> sql.Composable | None:
    """SQL condition on row `t`: the row violates the CHECK or FOREIGN KEY `constraint`."""
    if not constraint:
        return None
    with conn.transaction():
        row = conn.execute(
            "SELECT k.contype::text, pg_get_expr(k.conbin, k.conrelid), k.confrelid::regclass::text,"
            " (SELECT array_agg(a.attname ORDER BY x.n) FROM unnest(k.conkey) WITH ORDINALITY"
            "  x(num, n) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = x.num),"
            " (SELECT array_agg(a.attname ORDER BY x.n) FROM unnest(k.confkey) WITH ORDINALITY"
            "  x(num, n) JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = x.num)"
            " FROM pg_constraint k WHERE k.conrelid = format('%%I.%%I', %s::text, %s::text)::regclass"
            " AND k.conname = %s",
            [schema, table, constraint],
        ).fetchone()
    if row is None:
        return None
    kind, expression, ref_table, columns, ref_columns = row
    if kind == "c" and expression:
        # the catalog's own text of the check: trusted, not user input
        return sql.SQL("({}) IS FALSE").format(sql.SQL(expression))  # type: ignore[arg-type]
    if kind == "f" and columns and ref_columns:
        present = sql.SQL(" AND ").join(
            sql.SQL("t.{} IS NOT NULL").format(sql.Identifier(c)) for c in columns)
        match = sql.SQL(" AND ").join(
            sql.SQL("r.{} = t.{}").format(sql.Identifier(rc), sql.Identifier(c))
            for c, rc in zip(columns, ref_columns, strict=True))
        return sql.SQL("{} AND NOT EXISTS (SELECT 1 FROM {} AS r WHERE {})").format(
            present, sql.SQL(ref_table), match)  # type: ignore[arg-type]
    return None
