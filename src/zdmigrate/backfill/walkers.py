"""The SQL of one backfill batch, walking a table by key (keyset) or by block (ctid).

A position is where a batch starts: for a key walk, the last key done (a list of
the key columns' text values, or None before the first row); for a ctid walk,
the first block not yet done. Key values travel as text and are passed back as
untyped parameters, so PostgreSQL reads them with the column's own type: any
key type round-trips exactly, and the cursor is plain JSON.

The author's `set` and `where` are trusted SQL (like Alembic's ``op.execute``);
identifiers built here go through `psycopg.sql`. A literal ``%`` in author SQL
is escaped, because the statements are run with parameters.

Warning: `batch` runs inside the caller's transaction; its UPDATE holds the row
locks of the batch until that transaction ends, so keep it short.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg import sql

from zdmigrate.backfill.keys import TableKey, TableRef
from zdmigrate.steps import BackfillStep

Position = Any  # list[str] | int | None: JSON-serialisable


@dataclass(frozen=True)
class BatchOutcome:
    #: Where the next batch starts.
    end: Position
    #: Rows the batch covered (updated or already right).
    scanned: int
    #: Rows the UPDATE changed.
    updated: int
    #: True when the batch reached the end of its range.
    range_done: bool


class Walker(Protocol):
    mode: str

    def carve(
        self, conn: psycopg.Connection[Any], frontier: Position, rows: int
    ) -> tuple[Position, bool]:
        """The upper bound of the next range of about `rows` rows, and whether it is the last."""

    def batch(
        self, conn: psycopg.Connection[Any], lower: Position, upper: Position, rows: int
    ) -> BatchOutcome:
        """Update about `rows` rows after `lower`, not past `upper`."""

    def validate(self, conn: psycopg.Connection[Any]) -> None:
        """Have PostgreSQL parse and plan the UPDATE once (raises psycopg errors)."""


def author_sql(text: str) -> sql.SQL:
    """Trusted SQL written by the migration author, safe to run with parameters."""
    return sql.SQL(text.replace("%", "%%"))  # type: ignore[arg-type]


def assignments(step: BackfillStep) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{} = ({})").format(sql.Identifier(col), author_sql(expr))
        for col, expr in step.set.items()
    )


def differs_condition(step: BackfillStep) -> sql.Composable:
    """True for a row whose columns differ from what `set` would write."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in step.set)
    exprs = sql.SQL(", ").join(sql.SQL("({})").format(author_sql(e)) for e in step.set.values())
    return sql.SQL("ROW({}) IS DISTINCT FROM ROW({})").format(cols, exprs)


class KeysetWalker:
    """Pages by the key in index order: ``WHERE (k1, k2) > (...) AND (k1, k2) <= (...)``."""

    mode = "key"

    def __init__(self, table: TableRef, key: TableKey, step: BackfillStep) -> None:
        self.table = table
        self.key = key
        self.step = step
        idents = [sql.Identifier(c) for c in key.columns]
        self._cols = sql.SQL(", ").join(idents)
        self._row = sql.SQL("({})").format(self._cols)
        # aliased, or ORDER BY k would sort by the text output column named k
        self._as_text = sql.SQL(", ").join(
            sql.SQL("{}::text AS {}").format(i, sql.Identifier(f"_zdm_key{n}"))
            for n, i in enumerate(idents)
        )
        self._desc = sql.SQL(", ").join(sql.SQL("{} DESC").format(i) for i in idents)
        self._params = sql.SQL("({})").format(sql.SQL(", ").join([sql.Placeholder()] * len(idents)))
        self._update_head = sql.SQL("UPDATE {} SET {} WHERE ").format(
            table.ident, assignments(step)
        )
        self._where = (
            sql.SQL(" AND ({})").format(author_sql(step.where)) if step.where else sql.SQL("")
        )

    def _range(self, lower: Position, upper: Position) -> tuple[sql.Composable, list[Any]]:
        parts: list[sql.Composable] = []
        params: list[Any] = []
        if lower is not None:
            parts.append(sql.SQL("{} > {}").format(self._row, self._params))
            params.extend(lower)
        if upper is not None:
            parts.append(sql.SQL("{} <= {}").format(self._row, self._params))
            params.extend(upper)
        if not parts:
            return sql.SQL("true"), params
        return sql.SQL(" AND ").join(parts), params

    def _key_at(
        self, conn: psycopg.Connection[Any], lower: Position, upper: Position, offset: int
    ) -> list[str] | None:
        cond, params = self._range(lower, upper)
        row = conn.execute(
            sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} OFFSET %s LIMIT 1").format(
                self._as_text, self.table.ident, cond, self._cols
            ),
            [*params, offset],
        ).fetchone()
        return list(row) if row is not None else None

    def carve(
        self, conn: psycopg.Connection[Any], frontier: Position, rows: int
    ) -> tuple[Position, bool]:
        upper = self._key_at(conn, frontier, None, rows - 1)
        return upper, upper is None

    def batch(
        self, conn: psycopg.Connection[Any], lower: Position, upper: Position, rows: int
    ) -> BatchOutcome:
        end = self._key_at(conn, lower, upper, rows - 1)
        scanned = rows
        if end is None:  # fewer than `rows` left in the range: find its last key
            cond, params = self._range(lower, upper)
            row = conn.execute(
                sql.SQL(
                    "SELECT {}, count(*) OVER () FROM {} WHERE {} ORDER BY {} LIMIT 1"
                ).format(self._as_text, self.table.ident, cond, self._desc),
                params,
            ).fetchone()
            if row is None:
                return BatchOutcome(lower, 0, 0, True)
            end, scanned = list(row[:-1]), int(row[-1])
        cond, params = self._range(lower, end)
        cur = conn.execute(self._update_head + cond + self._where, params)
        done = scanned < rows or (upper is not None and list(end) == list(upper))
        return BatchOutcome(end, scanned, max(cur.rowcount, 0), done)

    def validate(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(sql.SQL("EXPLAIN ") + self._update_head + sql.SQL("false") + self._where, [])


class BlockWalker:
    """Pages by physical block: ``WHERE ctid >= '(b,0)' AND ctid < '(b+n,0)'``.

    For tables with no usable key. The upper block is fixed when the backfill
    starts; rows written later are the app's (kept right by dual-write). An
    UPDATE moves a row, possibly ahead of the cursor, so a row may be visited
    twice: without a `where`, the step only touches rows whose columns differ from
    what it would write, which makes a second visit harmless for deterministic
    expressions. Needs PostgreSQL 14+ for TID range scans to be fast.
    """

    mode = "ctid"

    def __init__(
        self, table: TableRef, step: BackfillStep, *, end_block: int, rows_per_block: float
    ) -> None:
        self.table = table
        self.step = step
        self.end_block = end_block
        self.rows_per_block = max(1.0, rows_per_block)
        guard = author_sql(step.where) if step.where else differs_condition(step)
        self._update = sql.SQL(
            "UPDATE {} SET {} WHERE ctid >= %s::tid AND ctid < %s::tid AND ({})"
        ).format(table.ident, assignments(step), guard)
        self._count = sql.SQL(
            "SELECT count(*) FROM {} WHERE ctid >= %s::tid AND ctid < %s::tid"
        ).format(table.ident)

    def _blocks(self, rows: int) -> int:
        return max(1, math.ceil(rows / self.rows_per_block))

    def carve(
        self, conn: psycopg.Connection[Any], frontier: Position, rows: int
    ) -> tuple[Position, bool]:
        start = int(frontier or 0)
        upper = min(start + self._blocks(rows), self.end_block)
        return upper, upper >= self.end_block

    def batch(
        self, conn: psycopg.Connection[Any], lower: Position, upper: Position, rows: int
    ) -> BatchOutcome:
        start = int(lower or 0)
        stop = min(start + self._blocks(rows), int(upper))
        if start >= stop:
            return BatchOutcome(start, 0, 0, True)
        bounds = [f"({start},0)", f"({stop},0)"]
        row = conn.execute(self._count, bounds).fetchone()
        scanned = int(row[0]) if row else 0
        cur = conn.execute(self._update, bounds)
        return BatchOutcome(stop, scanned, max(cur.rowcount, 0), stop >= int(upper))

    def validate(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(sql.SQL("EXPLAIN ") + self._update, ["(0,0)", "(0,0)"])


def key_text(values: Sequence[Any] | None) -> str:
    """A key position for messages: ``(42)`` or ``(7, 'b')``."""
    if values is None:
        return "(start)"
    return "(" + ", ".join(str(v) for v in values) + ")"
