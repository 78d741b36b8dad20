"""Repairing writes that would break a new constraint: `fix` for AddForeignKey and AddUnique.

Like AddCheck's `fix`: while old app versions still write rows the new
constraint rejects, a BEFORE trigger rewrites such a row with the `fix`
expressions (column -> SQL over the row), and backfill rewrites existing rows,
so the constraint can be validated (or its unique index built) without any
writer's statement failing.

The conditions come in two forms: unqualified, for the trigger (the columns
become fields of NEW), and qualified with the table name, for the backfill
UPDATE and its verification, where an unqualified name inside the subquery
would resolve to the other table's column of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops._expressions import check_expression, on_record
from zdmigrate.ops._names import QualifiedName, render

_OTHER = "zdm_other"


def parse_fix(fix: Mapping[str, str] | None, what: str) -> dict[str, str]:
    if fix is None:
        return {}
    if not isinstance(fix, Mapping) or not fix:
        raise OperationInvalid(f"{what}: fix must map column names to SQL expressions, got {fix!r}")
    return {c: check_expression(e, f"fix for {c!r}") for c, e in fix.items()}


def _column(column: str, outer: QualifiedName | None) -> sql.Composable:
    return sql.Identifier(outer.name, column) if outer else sql.Identifier(column)


def references_present(
    columns: list[str], ref_table: QualifiedName, ref_columns: list[str],
    outer: QualifiedName | None = None,
) -> str:
    """SQL boolean: the row satisfies the foreign key (MATCH SIMPLE: a NULL column satisfies it)."""
    any_null = sql.SQL(" OR ").join(
        sql.SQL("{} IS NULL").format(_column(c, outer)) for c in columns)
    match = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(_OTHER, r), _column(c, outer))
        for c, r in zip(columns, ref_columns, strict=True))
    return render(sql.SQL("({} OR EXISTS (SELECT 1 FROM {} {} WHERE {}))").format(
        any_null, ref_table.ident, sql.Identifier(_OTHER), match))


def duplicate_exists(table: QualifiedName, columns: list[str], *, first_kept: bool) -> str:
    """SQL boolean over the backfill's row: another row has the same non-NULL key.

    With `first_kept`, only rows after the first of their group (by ctid) count,
    so one row of each group keeps its value.
    """
    same = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(_OTHER, c), sql.Identifier(table.name, c))
        for c in columns)
    first = sql.SQL(" AND {} < {}").format(
        sql.Identifier(_OTHER, "ctid"), sql.Identifier(table.name, "ctid")) if first_kept else sql.SQL("")
    return render(sql.SQL("EXISTS (SELECT 1 FROM {} {} WHERE {}{})").format(
        table.ident, sql.Identifier(_OTHER), same, first))


def duplicate_body(table: QualifiedName, columns: list[str], fixes: Mapping[str, str]) -> str:
    """Trigger body: a written key that another row already holds is rewritten by `fixes`.

    Only an INSERT, or an UPDATE that changes the key, is judged: the row's own
    old version still holds the old key, so any row found is another row.
    """
    new = [render(sql.SQL("NEW.{}").format(sql.Identifier(c))) for c in columns]
    old = [render(sql.SQL("OLD.{}").format(sql.Identifier(c))) for c in columns]
    same = " AND ".join(
        f"{render(sql.Identifier(_OTHER, c))} = {n}" for c, n in zip(columns, new, strict=True))
    assignments = "\n".join(
        f"      {render(sql.SQL('NEW.{}').format(sql.Identifier(c)))} := ({on_record(e, 'new')});"
        for c, e in fixes.items())
    return (
        f"  IF TG_OP = 'INSERT' OR ({', '.join(new)}) IS DISTINCT FROM ({', '.join(old)}) THEN\n"
        f"    IF EXISTS (SELECT 1 FROM {render(table.ident)} {_OTHER} WHERE {same}) THEN\n"
        f"{assignments}\n    END IF;\n  END IF;"
    )
