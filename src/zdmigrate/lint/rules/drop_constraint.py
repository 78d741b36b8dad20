"""drop-constraint: ALTER TABLE ... DROP CONSTRAINT before contract drops what old versions rely on."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule
from zdmigrate.phases import Phase


class DropConstraint(Rule):
    id = "drop-constraint"
    category = Category.DESTRUCTIVE
    summary = "ALTER TABLE ... DROP CONSTRAINT outside the contract phase"
    why = (
        "The running app version relies on the constraint: a unique key for ON CONFLICT "
        "or deduplication, a foreign key or check for the integrity of what it reads."
    )
    fix = "drop the constraint in the contract phase, once no live version relies on it."
    targets = ("AlterTableStmt",)
    alter_subtypes = frozenset({"AT_DropConstraint"})
    bad = (Example("ALTER TABLE orders DROP CONSTRAINT orders_total_positive;"),)
    good = (
        Example("ALTER TABLE orders DROP CONSTRAINT orders_total_positive;", phase=Phase.CONTRACT),
    )

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        table = n.relname(stmt.node.get("relation"))
        for cmd in n.alter_cmds(stmt.node):
            if cmd.get("subtype") == "AT_DropConstraint":
                yield Finding(
                    f"DROP CONSTRAINT {cmd.get('name')} on "
                    f"{n.qualified(stmt.node.get('relation'))} outside contract", table=table,
                )
