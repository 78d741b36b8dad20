"""WidenColumnType: a binary-compatible type change in place: same column, same name, no rewrite.

    ops.WidenColumnType("users", "name", "varchar(200)")      # from varchar(100)
    ops.WidenColumnType("users", "bio", "text")               # from varchar(n)
    ops.WidenColumnType("orders", "total", "numeric(14,2)")   # from numeric(12,2)

PostgreSQL changes these types without rewriting the table or rebuilding its
indexes: varchar(n) to varchar(m >= n), varchar or text; text to varchar;
numeric(p,s) to numeric(q >= p, s) or numeric; varbit(n) to varbit(m >= n) or
varbit; cidr to inet. Every value of the old type is a value of the new one, so
old app versions keep working, and the change runs at expand (an instant under
a brief ACCESS EXCLUSIVE lock). The step checks the catalog when it runs and
refuses anything else, so it never rewrites by surprise; for any other change
use ChangeColumnType.

A CHECK constraint on the column would make PostgreSQL re-check every row while
it holds ACCESS EXCLUSIVE. So, in the same transaction as the type change, each
such check is dropped and added again NOT VALID (it still binds every write),
and a next step validates it again, a scan that lets reads and writes go on.

Warning: rolling back expand narrows the column again, which PostgreSQL does by
checking every row under ACCESS EXCLUSIVE (a rewrite for some types), and fails
if a new app version wrote a wider value meanwhile.
"""

from __future__ import annotations

from typing import Any

import pglast
from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _claims, _memo
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._claims import Claim
from zdmigrate.ops._names import QualifiedName, do_block, generated_name, render
from zdmigrate.ops._types import TypeSpec, render_type
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step


def _parse_type(text: str) -> tuple[str, list[int], bool]:
    """(base name, integer modifiers, is an array) of an SQL type name."""
    try:
        stmt: Any = pglast.parse_sql(f"SELECT NULL::{text}")[0].stmt
        type_name = stmt.targetList[0].val.typeName
    except (pglast.parser.ParseError, AttributeError, IndexError):
        raise OperationInvalid(f"WidenColumnType: {text!r} is not a type name") from None
    mods = [getattr(getattr(m, "val", None), "ival", None) for m in (type_name.typmods or ())]
    if not all(isinstance(m, int) for m in mods):
        raise OperationInvalid(f"WidenColumnType: the modifiers of {text!r} must be integers")
    return type_name.names[-1].sval, [int(m) for m in mods if m is not None], bool(type_name.arrayBounds)


def widening_condition(base: str, mods: list[int]) -> str | None:
    """SQL boolean over pg_attribute ``a``: the column's type widens to base(mods) in place.

    True also when the column already has that type, so a rerun is harmless. None
    when zdmigrate does not know the target as a binary-compatible widening.
    """
    def is_type(*names: str) -> str:
        return "a.atttypid IN ({})".format(", ".join(f"'pg_catalog.{n}'::regtype" for n in names))

    if base == "varchar" and len(mods) == 1:
        return f"{is_type('varchar')} AND a.atttypmod >= 0 AND a.atttypmod - 4 <= {mods[0]}"
    if base in ("varchar", "text") and not mods:
        return is_type("varchar", "text")
    if base == "numeric" and len(mods) in (1, 2):
        scale = mods[1] if len(mods) == 2 else 0
        return (f"{is_type('numeric')} AND a.atttypmod >= 0 AND ((a.atttypmod - 4) >> 16) <= "
                f"{mods[0]} AND ((a.atttypmod - 4) & 65535) = {scale}")
    if base == "numeric" and not mods:
        return is_type("numeric")
    if base == "varbit" and len(mods) == 1:
        return f"{is_type('varbit')} AND a.atttypmod >= 0 AND a.atttypmod <= {mods[0]}"
    if base == "varbit" and not mods:
        return is_type("varbit")
    if base == "inet" and not mods:
        return is_type("cidr", "inet")
    return None


class WidenColumnType(Operation):
    name = "widen_column_type"
    keeps_table_shape = True

    def __init__(self, table: str, column: str, type: TypeSpec, *, schema: str | None = None) -> None:
        self.table = QualifiedName.parse(table, schema)
        self.column = column
        self.new_type = render_type(type)
        base, mods, array = _parse_type(self.new_type)
        condition = None if array else widening_condition(base, mods)
        if condition is None:
            raise OperationInvalid(
                f"WidenColumnType {self.table}.{column}: {self.new_type!r} is not a type "
                "PostgreSQL widens to in place (varchar(n), text, numeric(p,s), varbit(n), inet); "
                "use ChangeColumnType")
        self.condition = condition

    def _is_column(self) -> str:
        """SQL boolean: pg_attribute ``a`` is this column."""
        return (f"a.attrelid = {render(sql.Literal(render(self.table.ident)))}::regclass "
                f"AND a.attname = {render(sql.Literal(self.column))}")

    def _attribute(self) -> str:
        return f"FROM pg_catalog.pg_attribute a WHERE {self._is_column()}"

    def _memo(self, migration_id: str) -> QualifiedName:
        return self.table.sibling(generated_name(migration_id, "widen", self.column, "memo"))

    def _alter(self) -> sql.Composed:
        return sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE ").format(
            self.table.ident, sql.Identifier(self.column))

    def _checks(self) -> str:
        """The CHECK constraints on the column: name, definition, validated."""
        return (
            "SELECT k.conname, pg_get_constraintdef(k.oid) AS def, k.convalidated "
            "FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_attribute a "
            "ON a.attrelid = k.conrelid AND a.attnum = ANY(k.conkey) "
            f"WHERE k.contype = 'c' AND {self._is_column()}"
        )

    def _widen(self) -> SQLStep:
        """Guard, drop the column's checks, change the type, add the checks again NOT VALID."""
        problem = render(sql.Literal(
            f"{self.table}.{self.column} no longer widens to {self.new_type} in place"))
        table = render(sql.Literal(render(self.table.ident)))
        lines = [
            "DECLARE",
            "  c record;",
            "  defs text[] := '{}';",
            "BEGIN",
            f"  IF NOT EXISTS (SELECT 1 {self._attribute()} AND {self.condition}) THEN",
            f"    RAISE EXCEPTION {problem};",
            "  END IF;",
            f"  FOR c IN {self._checks()} LOOP",
            f"    EXECUTE 'ALTER TABLE ' || {table} || ' DROP CONSTRAINT ' || quote_ident(c.conname);",
            "    defs := defs || ('ADD CONSTRAINT ' || quote_ident(c.conname) || ' '",
            "      || regexp_replace(c.def, ' NOT VALID$', '') || ' NOT VALID');",
            "  END LOOP;",
            f"  {render(self._alter())}{self.new_type};",
            "  FOR i IN 1 .. coalesce(array_length(defs, 1), 0) LOOP",
            f"    EXECUTE 'ALTER TABLE ' || {table} || ' ' || defs[i];",
            "  END LOOP;",
            "END",
        ]
        return SQLStep(do_block("\n" + "\n".join(lines) + "\n"), description=(
            f"widen {self.table}.{self.column} to {self.new_type}, no rewrite "
            "(its checks dropped and added again NOT VALID, in the same transaction)"))

    def _validate(self, memo: QualifiedName) -> SQLStep:
        table = render(sql.Literal(render(self.table.ident)))
        lines = [
            "DECLARE",
            "  name text;",
            "BEGIN",
            f"  FOR name IN SELECT jsonb_array_elements_text({_memo.function(memo)}() -> 'validate')"
            " LOOP",
            f"    EXECUTE 'ALTER TABLE ' || {table} || ' VALIDATE CONSTRAINT ' || quote_ident(name);",
            "  END LOOP;",
            "END",
        ]
        return SQLStep(do_block("\n" + "\n".join(lines) + "\n"),
                       description=f"validate the checks of {self.table}.{self.column} again")

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        memo = self._memo(migration_id)
        if phase is Phase.EXPAND:
            saved = (
                "jsonb_build_object('type', "
                f"(SELECT format_type(a.atttypid, a.atttypmod) {self._attribute()}), "
                f"'validate', (SELECT coalesce(jsonb_agg(c.conname), '[]') FROM ({self._checks()}) c "
                "WHERE c.convalidated))"
            )
            return [_memo.save_step(memo, saved), self._widen(), self._validate(memo)]
        if phase is Phase.CONTRACT:
            return [_memo.drop_step(memo)]
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.EXPAND:
            return []
        memo = self._memo(migration_id)
        restore = SQLStep(
            do_block(f"\nDECLARE\n  saved text := {_memo.read(memo, 'type')};\nBEGIN\n"
            f"  IF saved IS NOT NULL THEN\n    EXECUTE {render(sql.Literal(render(self._alter())))}"
            f" || saved;\n  END IF;\nEND\n"),
            description=f"narrow {self.table}.{self.column} back to its old type (checks every row)",
        )
        return [restore, _memo.drop_step(memo)]

    def requirements(self) -> list[Requirement]:
        return [
            req.table_exists(self.table),
            req.column_exists(self.table, self.column),
            Requirement(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r "
                "ON r.oid = d.objid JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid "
                "AND a.attnum = d.refobjsubid WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass "
                f"AND r.ev_class <> a.attrelid AND {self._is_column()})",
                f"column {self.column!r} of table {self.table} is used by a view; PostgreSQL "
                "cannot change its type until the view is dropped",
            ),
            Requirement(
                f"SELECT EXISTS (SELECT 1 {self._attribute()} AND {self.condition})",
                f"column {self.column!r} of table {self.table} does not widen to {self.new_type} "
                "without a rewrite (see WidenColumnType; use ChangeColumnType)",
            ),
        ]

    def claims(self, migration_id: str) -> list[Claim]:
        return [_claims.memo(self._memo(migration_id), f"the type of {self.column}")]

    def describe(self) -> str:
        return f"widen {self.table}.{self.column} to {self.new_type}"
