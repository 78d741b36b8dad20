"""add-column-not-null-without-default: a NOT NULL column with no default breaks old inserts."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._add_column import added_columns
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule

_FILLED = {"CONSTR_DEFAULT", "CONSTR_GENERATED", "CONSTR_IDENTITY"}


class AddColumnNotNullWithoutDefault(Rule):
    id = "add-column-not-null-without-default"
    category = Category.DESTRUCTIVE
    summary = "ADD COLUMN ... NOT NULL without a DEFAULT"
    why = (
        "On a table with rows it fails outright (existing rows would be NULL); on an "
        "empty one, every insert of the running app version, which does not know the "
        "column, fails."
    )
    fix = (
        "add the column with a constant DEFAULT (instant since PostgreSQL 11), or add it "
        "nullable, backfill, and make it NOT NULL in contract via a validated CHECK."
    )
    targets = ("AlterTableStmt",)
    alter_subtypes = frozenset({"AT_AddColumn"})
    bad = (Example("ALTER TABLE users ADD COLUMN plan text NOT NULL;"),)
    good = (Example("ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';"),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        rel = stmt.node.get("relation")
        for col in added_columns(stmt.node):
            kinds = {c.get("contype") for c in n.column_constraints(col)}
            info = n.type_info(col.get("typeName"))
            if info is not None and info.name in n.SERIAL_TYPES:
                continue  # serial brings its own default (see add-column-serial)
            if ("CONSTR_NOTNULL" in kinds or "CONSTR_PRIMARY" in kinds) and not kinds & _FILLED:
                yield Finding(
                    f"ADD COLUMN {n.qualified(rel)}.{col.get('colname')} NOT NULL without a default",
                    table=n.relname(rel),
                )
