"""rename-column: renaming a column breaks every query of the version still running."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


class RenameColumn(Rule):
    id = "rename-column"
    category = Category.DESTRUCTIVE
    summary = "ALTER TABLE ... RENAME COLUMN outside the contract phase"
    why = "The running app version still uses the old name; its queries fail at once."
    fix = (
        "add the new column in expand, keep both in sync (dual-write or a sync trigger), "
        "backfill, switch reads, drop the old column in contract: ops.RenameColumn does all of it."
    )
    targets = ("RenameStmt",)
    bad = (Example('ALTER TABLE users RENAME COLUMN name TO full_name;'),)
    good = (Example("ALTER TABLE users ADD COLUMN full_name text;"),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        node = stmt.node
        if node.get("renameType") == "OBJECT_COLUMN":
            yield Finding(
                f"RENAME COLUMN {n.qualified(node.get('relation'))}.{node.get('subname')} "
                f"TO {node.get('newname')} outside contract",
                table=n.relname(node.get("relation")),
            )
