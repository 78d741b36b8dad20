"""Which table a backfill step means, and the key it walks that table by.

The key is the primary key; a table without one uses its narrowest unique,
non-partial, immediate btree index over NOT NULL columns; a table with neither
is walked by physical position (ctid block ranges). Every identifier found here
is later quoted with `psycopg.sql.Identifier`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

from zdmigrate.errors import BadInput
from zdmigrate.steps import BackfillStep

KeyKind = Literal["primary-key", "unique", "ctid"]


@dataclass(frozen=True)
class TableRef:
    """A table that exists: its schema, name and oid."""

    schema: str
    name: str
    oid: int

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    def __str__(self) -> str:
        return f"{_display(self.schema)}.{_display(self.name)}"


def _display(name: str) -> str:
    """A name as a person would type it: quoted only when it must be."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class TableKey:
    """The columns a backfill orders and pages by (empty for ctid)."""

    kind: KeyKind
    columns: tuple[str, ...]
    index: str | None = None

    def describe(self) -> str:
        if self.kind == "ctid":
            return "ctid block ranges (no primary key or unique NOT NULL key)"
        cols = ", ".join(self.columns)
        label = "primary key" if self.kind == "primary-key" else f"unique index {self.index}"
        return f"{label} ({cols})"


def where_written(step: BackfillStep) -> str:
    """`file:line` of the step for messages, or the table when unknown."""
    return str(step.source) if step.source else f"backfill of {step.qualified_table}"


def resolve_table(conn: psycopg.Connection[Any], step: BackfillStep) -> TableRef:
    """The table of `step`, looked up through the search_path when it has no schema."""
    if step.schema:
        name = sql.Identifier(step.schema, step.table).as_string(conn)
    else:
        name = sql.Identifier(step.table).as_string(conn)
    row = conn.execute(
        "SELECT c.oid::int, n.nspname, c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
        [name],
    ).fetchone()
    if row is None:
        raise BadInput(
            f"{where_written(step)}: backfill table {step.qualified_table!r} does not exist",
            hint="did the expand phase create it, and is the schema right?",
        )
    return TableRef(schema=row[1], name=row[2], oid=int(row[0]))


def find_key(conn: psycopg.Connection[Any], table: TableRef) -> TableKey:
    """The primary key, else the narrowest usable unique key, else ctid."""
    row = conn.execute(
        """
        SELECT i.indisprimary, ic.relname, array_agg(a.attname ORDER BY k.ord)
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = %s AND i.indisunique AND i.indisvalid AND i.indimmediate
          AND i.indpred IS NULL AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts
        GROUP BY i.indexrelid, i.indisprimary, ic.relname
        HAVING bool_and(a.attnotnull)
        ORDER BY i.indisprimary DESC, count(*), ic.relname
        LIMIT 1
        """,
        [table.oid],
    ).fetchone()
    if row is None:
        return TableKey("ctid", ())
    kind: KeyKind = "primary-key" if row[0] else "unique"
    return TableKey(kind, tuple(row[2]), row[1])


def estimated_rows(conn: psycopg.Connection[Any], table: TableRef) -> int | None:
    """The planner's estimate of the table's row count (None if it has no idea)."""
    row = conn.execute(
        sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {}").format(table.ident)
    ).fetchone()
    if row is None:
        return None
    plan = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    rows = plan[0]["Plan"].get("Plan Rows")
    return int(rows) if rows is not None else None


#: Statistics older than this share of changed rows are stale: the total is counted.
STALE_SHARE = 0.2


def row_total(conn: psycopg.Connection[Any], table: TableRef) -> tuple[int | None, bool]:
    """The rows to walk: (total, whether it is an estimate).

    The planner's estimate when the table's statistics are fresh; a count when
    they are missing (never ANALYZEd) or stale (more than a fifth of the rows
    changed since), since then the estimate can be off by any factor.

    Warning: the count reads the whole table once (no lock beyond ACCESS SHARE).
    """
    row = conn.execute(
        "SELECT c.reltuples, c.relpages, s.n_mod_since_analyze, "
        "       s.last_analyze IS NULL AND s.last_autoanalyze IS NULL "
        "  FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid "
        " WHERE c.oid = %s::oid",
        [table.oid],
    ).fetchone()
    if row is not None:
        reltuples, relpages, changed, never = float(row[0]), int(row[1]), row[2], row[3]
        missing = reltuples < 0 or (reltuples == 0 and relpages == 0) or bool(never)
        stale = changed is not None and int(changed) > STALE_SHARE * max(reltuples, 1.0)
        if missing or stale:
            counted = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(table.ident)).fetchone()
            return (int(counted[0]) if counted else None), False
    return estimated_rows(conn, table), True


def table_blocks(conn: psycopg.Connection[Any], table: TableRef) -> tuple[int, float]:
    """(blocks in the table now, estimated rows per block, at least 1)."""
    row = conn.execute(
        "SELECT pg_relation_size(%s::oid) / current_setting('block_size')::bigint, "
        "c.reltuples, c.relpages FROM pg_class c WHERE c.oid = %s::oid",
        [table.oid, table.oid],
    ).fetchone()
    assert row is not None
    blocks, reltuples, relpages = int(row[0]), float(row[1]), int(row[2])
    per_block = reltuples / relpages if reltuples > 0 and relpages > 0 else 50.0
    return blocks, max(1.0, per_block)
