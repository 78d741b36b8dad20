"""rename-table: renaming a table or view breaks every query of the version still running."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule

_KINDS = {
    "OBJECT_TABLE": "TABLE",
    "OBJECT_VIEW": "VIEW",
    "OBJECT_MATVIEW": "MATERIALIZED VIEW",
    "OBJECT_FOREIGN_TABLE": "FOREIGN TABLE",
}


class RenameTable(Rule):
    id = "rename-table"
    category = Category.DESTRUCTIVE
    summary = "ALTER TABLE/VIEW ... RENAME TO outside the contract phase"
    why = "The running app version still uses the old name; its queries fail at once."
    fix = (
        "create the new table in expand, sync writes (dual-write or triggers), backfill, "
        "switch reads, drop the old table in contract; or rename in contract and leave a "
        "view with the old name in expand (CREATE VIEW old AS SELECT * FROM new) for old readers."
    )
    targets = ("RenameStmt",)
    bad = (Example("ALTER TABLE customer RENAME TO customers;"),)
    good = (Example("CREATE TABLE customers (id bigint PRIMARY KEY, name text);"),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        node = stmt.node
        kind = _KINDS.get(node.get("renameType", ""))
        if kind:
            yield Finding(
                f"RENAME {kind} {n.qualified(node.get('relation'))} TO {node.get('newname')} "
                "outside contract",
                table=n.relname(node.get("relation")),
            )
