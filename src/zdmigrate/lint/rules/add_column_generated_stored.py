"""add-column-generated-stored: ADD COLUMN ... GENERATED ALWAYS AS (...) STORED rewrites the table."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._add_column import added_columns
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


class AddColumnGeneratedStored(Rule):
    id = "add-column-generated-stored"
    category = Category.LOCK
    summary = "ADD COLUMN ... GENERATED ALWAYS AS (...) STORED on an existing table"
    why = (
        "PostgreSQL computes and stores the expression for every existing row, rewriting "
        "the table under an ACCESS EXCLUSIVE lock."
    )
    fix = (
        "add a plain column filled by a trigger for new rows and a batched backfill for old "
        "ones; on PostgreSQL 18 a VIRTUAL generated column needs no rewrite."
    )
    targets = ("AlterTableStmt",)
    alter_subtypes = frozenset({"AT_AddColumn"})
    bad = (Example("ALTER TABLE orders ADD COLUMN total_cents bigint "
                   "GENERATED ALWAYS AS (total * 100) STORED;"),)
    good = (Example("ALTER TABLE orders ADD COLUMN total_cents bigint;"),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        rel = stmt.node.get("relation")
        for col in added_columns(stmt.node):
            for con in n.column_constraints(col):
                if con.get("contype") == "CONSTR_GENERATED" and con.get("generated_kind", "s") == "s":
                    yield Finding(
                        f"ADD COLUMN {n.qualified(rel)}.{col.get('colname')} GENERATED ... STORED",
                        table=n.relname(rel),
                    )
