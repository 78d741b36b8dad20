"""Checks an operation asks the engine to run on the live schema before expand.

Each returns a `Requirement`: a query run in a rolled-back transaction, with the
message shown when it fails. Catalog lookups take names as parameters, never as
SQL text; expression checks compile the user's expression against the table
with ``LIMIT 0``, so they read no rows.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.ops._claims import Claim, taken_sql
from zdmigrate.ops._names import QualifiedName, render
from zdmigrate.ops.base import Requirement

_RELATION = (
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %s AND c.relname = %s{kinds})"
)
_COLUMN = (
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a "
    "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s "
    "AND a.attnum > 0 AND NOT a.attisdropped)"
)


def table_exists(table: QualifiedName) -> Requirement:
    return Requirement(
        _RELATION.format(kinds=" AND c.relkind IN ('r', 'p')"),
        f"table {table} does not exist",
        params=[table.schema, table.name],
    )


def relation_absent(name: QualifiedName, what: str = "table") -> Requirement:
    return Requirement(
        "SELECT NOT " + _RELATION.format(kinds="")[len("SELECT "):],
        f"{what} {name}: the name is already taken by another relation",
        params=[name.schema, name.name],
    )


def index_name_free(name: QualifiedName) -> Requirement:
    """No relation is called `name`, except an INVALID index: the leftover of a failed
    ``CREATE INDEX CONCURRENTLY``, which the engine drops before building again."""
    return Requirement(
        "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid "
        "WHERE n.nspname = %s AND c.relname = %s AND i.indisvalid IS DISTINCT FROM false)",
        f"index {name}: the name is already taken by another relation",
        params=[name.schema, name.name],
    )


def index_exists(name: QualifiedName) -> Requirement:
    return Requirement(
        _RELATION.format(kinds=" AND c.relkind IN ('i', 'I')"),
        f"index {name} does not exist",
        params=[name.schema, name.name],
    )


def column_exists(table: QualifiedName, column: str) -> Requirement:
    return Requirement(
        _COLUMN, f"column {column!r} does not exist in table {table}",
        params=[table.schema, table.name, column],
    )


def column_absent(table: QualifiedName, column: str) -> Requirement:
    return Requirement(
        "SELECT NOT " + _COLUMN[len("SELECT "):],
        f"column {column!r} already exists in table {table}",
        params=[table.schema, table.name, column],
    )


def constraint_absent(table: QualifiedName, name: str) -> Requirement:
    return Requirement(
        "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k "
        "JOIN pg_catalog.pg_class c ON c.oid = k.conrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND k.conname = %s)",
        f"constraint {name!r} already exists on table {table}",
        params=[table.schema, table.name, name],
    )


def type_exists(name: QualifiedName, *, present: bool = True) -> Requirement:
    query = (
        "SELECT {} EXISTS (SELECT 1 FROM pg_catalog.pg_type t "
        "JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = %s AND t.typname = %s)"
    ).format("" if present else "NOT")
    problem = f"type {name} does not exist" if present else f"type {name} already exists"
    return Requirement(query, problem, params=[name.schema, name.name])


def expression_compiles(
    table: QualifiedName,
    expr: str,
    what: str,
    *,
    cast_to: str | None = None,
    extra_columns: dict[str, str] | None = None,
) -> Requirement:
    """`expr` compiles against `table` (plus `extra_columns`, not yet added: name -> type)."""
    value = sql.SQL("({})").format(sql.SQL(expr))
    if cast_to is not None:
        value = sql.SQL("({})::{}").format(value, sql.SQL(cast_to))
    source: sql.Composable = table.ident
    if extra_columns:
        extras = sql.SQL(", ").join(
            sql.SQL("NULL::{} AS {}").format(sql.SQL(t), sql.Identifier(c))
            for c, t in extra_columns.items()
        )
        source = sql.SQL("(SELECT *, {} FROM {}) AS {}").format(
            extras, table.ident, sql.Identifier(table.name)
        )
    query = sql.SQL("SELECT {} FROM {} LIMIT 0").format(value, source)
    return Requirement(
        render(query), f"{what} {expr!r} does not compile against table {table}", expect="runs"
    )


def rows_satisfy(table: QualifiedName, condition: str, problem: str) -> Requirement:
    """No row of `table` matches `condition` (an SQL boolean over the row)."""
    query = sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {} WHERE {})").format(
        table.ident, sql.SQL(condition)
    )
    return Requirement(render(query), problem)


_CONSTRAINT = (
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k "
    "JOIN pg_catalog.pg_class c ON c.oid = k.conrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %s AND c.relname = %s AND k.conname = %s)"
)


def constraint_exists(table: QualifiedName, name: str) -> Requirement:
    return Requirement(
        _CONSTRAINT, f"constraint {name!r} does not exist on table {table}",
        params=[table.schema, table.name, name],
    )


def names_free(claims: list[Claim], what: str) -> Requirement:
    """No object zdmigrate did not create holds a name of `claims` (see `_claims`)."""
    return Requirement(taken_sql(claims), f"{what}: a name zdmigrate would create is taken",
                       expect="clear")
