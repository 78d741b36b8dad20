"""validate-in-same-transaction: VALIDATE right after ADD ... NOT VALID, in one transaction, keeps the lock.

Warning: ADD CONSTRAINT takes a strong lock that is held until COMMIT; a
VALIDATE in the same transaction scans the table while still holding it, which
is exactly what NOT VALID was meant to avoid.
"""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


class ValidateInSameTransaction(Rule):
    id = "validate-in-same-transaction"
    category = Category.LOCK
    summary = "VALIDATE CONSTRAINT in the same transaction as the ADD CONSTRAINT ... NOT VALID"
    why = (
        "The lock taken by ADD CONSTRAINT (ACCESS EXCLUSIVE or SHARE ROW EXCLUSIVE) is held "
        "until COMMIT, so the validating scan runs while writes are blocked."
    )
    fix = (
        "COMMIT between the two, or put VALIDATE in a later step or phase (switch-read "
        "is the usual place); zdmigrate runs each step in its own transaction."
    )
    targets = ("AlterTableStmt",)
    alter_subtypes = frozenset({"AT_ValidateConstraint"})
    bad = (
        Example("BEGIN;\nALTER TABLE orders ADD CONSTRAINT orders_total_positive "
                "CHECK (total >= 0) NOT VALID;\n"
                "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;\nCOMMIT;"),
    )
    good = (
        Example("ALTER TABLE orders ADD CONSTRAINT orders_total_positive "
                "CHECK (total >= 0) NOT VALID;\n"
                "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;"),
    )

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        if not state.not_valid_in_transaction:
            return
        rel = stmt.node.get("relation")
        table = (n.relname(rel) or "").lower()
        for cmd in n.alter_cmds(stmt.node):
            if cmd.get("subtype") == "AT_ValidateConstraint" and (
                (table, cmd.get("name", "")) in state.not_valid_in_transaction
            ):
                yield Finding(
                    f"VALIDATE CONSTRAINT {cmd.get('name')} on {n.qualified(rel)} in the "
                    f"transaction opened on line {state.transaction_line}", table=table,
                )
