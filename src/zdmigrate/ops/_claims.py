"""The names an operation will create, and what already holds one of them.

zdmigrate generates names for what it creates behind an operation: sync
triggers and their functions, memo functions, helper CHECK constraints,
lookup indexes, copies of indexes and constraints, version schemas. Such a
name that some other object already holds would be skipped by an ``IF NOT
EXISTS``, replaced by ``CREATE OR REPLACE`` or dropped by a rollback, and
contract would then rename or drop the wrong object. So before expand, every
name the operation will create in any phase is looked up in the catalog
(`Operation.claims`), and one already taken is refused (exit 2), naming the
object.

An object counts as zdmigrate's own when it carries the marker comment
zdmigrate writes on it for this migration (copies of indexes and constraints,
version schemas). Objects without a marker (triggers, functions, helper
constraints) are recognised as zdmigrate's through the step log instead: once
a step of expand has started, the engine no longer checks, and each step
recognises what an earlier attempt left.

Each claim is SQL returning rows ``(name, what, holder)``: the generated name,
what zdmigrate would create under it, and the object that already holds it.
Tables are looked up by name (``to_regclass``), never cast, so a table that an
earlier operation of the migration creates yields no row.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from zdmigrate.ops._names import QualifiedName, render

#: The keys of the JSON marker comments zdmigrate writes on its own objects.
CARRY_MARK = "zdm_carry"
VERSION_SCHEMA_MARK = "zdmigrate_version_schema"


def relation_kind(c: str) -> str:
    """SQL: what pg_class row `c` is, in words (``index``, ``table``, ...)."""
    return (
        f"CASE {c}.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'i' THEN 'index'"
        " WHEN 'I' THEN 'index' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'"
        " WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'relation' END"
    )


def _lit(value: str) -> str:
    return render(sql.Literal(value))


def ours(oid: str, catalog: str, migration_id: str) -> str:
    """SQL condition: object `oid` of `catalog` carries zdmigrate's marker for `migration_id`."""
    note = f"obj_description({oid}, {_lit(catalog)})"
    checks = []
    for key in (CARRY_MARK, VERSION_SCHEMA_MARK):
        prefix = _lit('{"' + key + '"%')
        checks.append(f"(CASE WHEN {note} LIKE {prefix} THEN ({note})::jsonb ->> {_lit(key)} END)"
                      f" IS NOT DISTINCT FROM {_lit(migration_id)}")
    return "(" + " OR ".join(checks) + ")"


def table_oid(table: QualifiedName) -> str:
    """SQL: the table's oid, NULL when there is no such table (yet)."""
    return f"to_regclass({_lit(render(table.ident))})"


def column_number(table: QualifiedName, column: str) -> str:
    """SQL: the attribute number of `column` in `table`, NULL when there is none."""
    return (f"(SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid = {table_oid(table)}"
            f" AND attname = {_lit(column)} AND attnum > 0 AND NOT attisdropped)")


@dataclass(frozen=True)
class Claim:
    """A name an operation will create; `sql` returns the objects already holding it."""

    sql: str


def _claim(name: str, what: str, holder: str, source: str) -> Claim:
    return Claim(f"SELECT {_lit(name)}::text, {_lit(what)}::text, {holder} {source}")


def relation(name: QualifiedName, what: str, migration_id: str) -> Claim:
    """An index (or other relation) called `name`."""
    return _claim(
        name.name, what, f"format('%s %I.%I', {relation_kind('c')}, n.nspname, c.relname)",
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        f" WHERE n.nspname = {_lit(name.schema)} AND c.relname = {_lit(name.name)}"
        f" AND NOT {ours('c.oid', 'pg_class', migration_id)}",
    )


def constraint(table: QualifiedName, name: str, what: str, migration_id: str) -> Claim:
    """A constraint called `name` on `table`."""
    return _claim(
        name, what, "format('constraint %I on %s', k.conname, k.conrelid::regclass)",
        f"FROM pg_catalog.pg_constraint k WHERE k.conrelid = {table_oid(table)}"
        f" AND k.conname = {_lit(name)} AND NOT {ours('k.oid', 'pg_constraint', migration_id)}",
    )


def trigger(table: QualifiedName, name: str, what: str) -> Claim:
    """A trigger called `name` on `table`."""
    return _claim(
        name, what, "format('trigger %I on %s', t.tgname, t.tgrelid::regclass)",
        f"FROM pg_catalog.pg_trigger t WHERE t.tgrelid = {table_oid(table)}"
        f" AND t.tgname = {_lit(name)}",
    )


def function(name: QualifiedName, what: str) -> Claim:
    """A function (or procedure) `name()` without arguments."""
    return _claim(
        name.name, what, "format('function %I.%I()', n.nspname, p.proname)",
        "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
        f" WHERE n.nspname = {_lit(name.schema)} AND p.proname = {_lit(name.name)}"
        " AND p.pronargs = 0",
    )


def schema(name: str, what: str, migration_id: str) -> Claim:
    """A schema called `name`."""
    return _claim(
        name, what, "format('schema %I', s.nspname)",
        f"FROM pg_catalog.pg_namespace s WHERE s.nspname = {_lit(name)}"
        f" AND NOT {ours('s.oid', 'pg_namespace', migration_id)}",
    )


def column(table: QualifiedName, name: str, what: str) -> Claim:
    """A column called `name` in `table`."""
    return _claim(
        name, what, "format('column %I of %s', a.attname, a.attrelid::regclass)",
        f"FROM pg_catalog.pg_attribute a WHERE a.attrelid = {table_oid(table)}"
        f" AND a.attname = {_lit(name)} AND a.attnum > 0 AND NOT a.attisdropped",
    )


def sync_trigger(table: QualifiedName, name: str) -> list[Claim]:
    """A sync trigger and its function, both called `name`."""
    return [trigger(table, name, "its sync trigger"),
            function(table.sibling(name), "its sync trigger's function")]


def not_null_check(table: QualifiedName, name: str, column: str, migration_id: str) -> Claim:
    """The helper ``CHECK (column IS NOT NULL)`` that SET NOT NULL goes through."""
    return constraint(table, name, f"the helper CHECK that makes {column} NOT NULL", migration_id)


def memo(name: QualifiedName, what: str) -> Claim:
    """A memo function (see `_memo`)."""
    return function(name, f"the memo function that keeps {what}")


def taken_sql(claims: list[Claim]) -> str:
    """SQL returning one sentence per claimed name that some other object holds."""
    union = "\nUNION ALL\n".join(c.sql for c in claims)
    return (
        "SELECT format('the name %I, which zdmigrate would give %s, is already taken by %s, "
        "which zdmigrate did not create for this migration; rename or drop that object, "
        "then run again', name, what, holder)\n"
        f"FROM (\n{union}\n) AS taken(name, what, holder) ORDER BY 1"
    )
