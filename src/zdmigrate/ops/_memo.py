"""Facts about the schema saved at expand so that rollback can restore them exactly.

An operation's steps are planned without a database, so an operation that
changes something it cannot see (a column's default, its NOT NULL) saves the old
value when it runs: a tiny SQL function ``zdm_<migration>_..._memo()`` in the
table's schema returns them as jsonb. Rollback reads it and drops it; contract
drops it. It is an ordinary, visible object, removed with the migration.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.ops._names import QualifiedName, do_block, render
from zdmigrate.steps import SQLStep


def function(name: QualifiedName) -> str:
    return render(sql.Identifier(name.schema, name.name))


def save_step(name: QualifiedName, facts: str) -> SQLStep:
    """Save `facts` (an SQL expression of type jsonb, evaluated now) as function `name`."""
    create = render(
        sql.SQL("CREATE FUNCTION {}() RETURNS jsonb LANGUAGE sql IMMUTABLE AS ").format(
            sql.Identifier(name.schema, name.name)
        )
    )
    return SQLStep(
        do_block(
            f"\nBEGIN\n  EXECUTE {render(sql.Literal(create))}"
            f" || quote_literal('SELECT ' || quote_literal(({facts})::text) || '::jsonb');\nEND\n"),
        description=f"save the old state in {name}()",
    )


def read(name: QualifiedName, key: str) -> str:
    """SQL text: the saved fact `key`, as text (NULL when saved as null)."""
    return f"({function(name)}() ->> {render(sql.Literal(key))})"


def drop_step(name: QualifiedName) -> SQLStep:
    return SQLStep(render(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(
        sql.Identifier(name.schema, name.name))))
