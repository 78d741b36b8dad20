"""SET NOT NULL without a long ACCESS EXCLUSIVE lock: through a validated CHECK constraint.

``ALTER COLUMN ... SET NOT NULL`` scans the whole table under ACCESS EXCLUSIVE,
blocking every reader and writer. Instead: add ``CHECK (col IS NOT NULL) NOT
VALID`` (an instant), ``VALIDATE`` it (a scan under SHARE UPDATE EXCLUSIVE, which
lets reads and writes go on), then SET NOT NULL, which PostgreSQL 12+ proves from
the valid check without scanning, and drop the check. Each is its own step, so
no transaction holds the strong lock for longer than an instant.

The conditional form wraps each step in a DO block that first asks the catalog
whether there is anything to do (e.g. "was the old column NOT NULL?"), for
operations that cannot know the answer when the plan is made.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.ops._names import QualifiedName, do_block, literal, render
from zdmigrate.steps import SCAFFOLDING, SQLStep


def set_not_null_steps(
    table: QualifiedName, column: str, check_name: str, *, old_versions_unaffected: bool = False
) -> list[SQLStep]:
    """The four steps; the helper CHECK's drop is scaffolding. With
    `old_versions_unaffected` (a column old versions never write, filled by a
    default), SET NOT NULL is scaffolding too: no fleet proof needed for it."""
    t, c, k = table.ident, sql.Identifier(column), sql.Identifier(check_name)
    return [
        SQLStep(render(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({} IS NOT NULL) NOT VALID")
                       .format(t, k, c))),
        SQLStep(render(sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(t, k))),
        SQLStep(render(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET NOT NULL").format(t, c)),
                role=SCAFFOLDING if old_versions_unaffected else None),
        SQLStep(render(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(t, k)),
                role=SCAFFOLDING),
    ]


def constraint_present(table: QualifiedName, name: str) -> str:
    """SQL boolean: `table` has a constraint called `name` (checked at run time)."""
    return (f"EXISTS (SELECT 1 FROM pg_catalog.pg_constraint "
            f"WHERE conrelid = {table.regclass} AND conname = {literal(name)})")


def column_not_null(table: QualifiedName, column: str) -> str:
    """SQL boolean: `column` of `table` is NOT NULL right now."""
    return (f"EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = {table.regclass} "
            f"AND attname = {literal(column)} AND attnotnull)")


def drop_not_null_sql(table: QualifiedName, column: str) -> str:
    """``ALTER TABLE ... ALTER COLUMN ... DROP NOT NULL``: an instant, it only relaxes."""
    return render(sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(
        table.ident, sql.Identifier(column)))


def do_if(condition: str, statements: list[str], description: str | None = None) -> SQLStep:
    """One DO block running `statements` only when `condition` holds at run time."""
    body = "\n".join(f"    {s};" for s in statements)
    return SQLStep(
        do_block(f"\nBEGIN\n  IF {condition} THEN\n{body}\n  END IF;\nEND\n"),
        description=description,
    )


def conditional_set_not_null_steps(
    table: QualifiedName, column: str, check_name: str, condition: str
) -> list[SQLStep]:
    """Like `set_not_null_steps`, but only when `condition` holds when the first step runs."""
    add, validate, set_nn, drop = (s.sql for s in set_not_null_steps(table, column, check_name))
    present = constraint_present(table, check_name)
    return [
        do_if(condition, [add]),
        do_if(present, [validate]),
        do_if(present, [set_nn, drop]),
    ]
