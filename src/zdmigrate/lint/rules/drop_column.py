"""drop-column: ALTER TABLE ... DROP COLUMN before contract breaks the running app version."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule
from zdmigrate.phases import Phase


class DropColumn(Rule):
    id = "drop-column"
    category = Category.DESTRUCTIVE
    summary = "ALTER TABLE ... DROP COLUMN outside the contract phase"
    why = (
        "The app version still running selects or inserts the column; its queries "
        "fail (and ORMs that list every column fail on every query of the table)."
    )
    fix = (
        "stop using the column in the app first, then drop it in the contract phase "
        "(ops.DropColumn), which waits for the fleet check."
    )
    targets = ("AlterTableStmt",)
    alter_subtypes = frozenset({"AT_DropColumn"})
    bad = (Example("ALTER TABLE users DROP COLUMN legacy_name;"),)
    good = (Example("ALTER TABLE users DROP COLUMN legacy_name;", phase=Phase.CONTRACT),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        table = n.relname(stmt.node.get("relation"))
        for cmd in n.alter_cmds(stmt.node):
            if cmd.get("subtype") == "AT_DropColumn":
                yield Finding(
                    f"DROP COLUMN {n.qualified(stmt.node.get('relation'))}.{cmd.get('name')} "
                    "outside contract", table=table,
                )
