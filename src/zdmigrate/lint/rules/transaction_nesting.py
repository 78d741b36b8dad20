"""transaction-nesting: BEGIN inside an open transaction, or COMMIT/ROLLBACK with none open."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule

_BEGIN = ("TRANS_STMT_BEGIN", "TRANS_STMT_START")
_END = ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK")


class TransactionNesting(Rule):
    id = "transaction-nesting"
    category = Category.CORRECTNESS
    summary = "BEGIN inside a transaction, or COMMIT/ROLLBACK outside one"
    why = (
        "PostgreSQL has no nested transactions: a second BEGIN is ignored, so the first "
        "COMMIT ends the outer transaction early; inside a zdmigrate step, a COMMIT ends "
        "the transaction that zdmigrate opened around the step (with its lock_timeout)."
    )
    fix = (
        "one BEGIN ... COMMIT per transaction; in migrations leave transactions to "
        "zdmigrate, which runs every step in its own short transaction."
    )
    exempt_new_tables = False
    targets = ("TransactionStmt",)
    bad = (Example("BEGIN;\nBEGIN;\nALTER TABLE users ADD COLUMN note text;\nCOMMIT;\nCOMMIT;"),)
    good = (Example("BEGIN;\nALTER TABLE users ADD COLUMN note text;\nCOMMIT;"),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        kind = stmt.node.get("kind", "")
        if kind in _BEGIN and state.in_transaction_block:
            if state.transaction_line is not None:
                yield Finding(f"BEGIN inside the transaction opened on line {state.transaction_line}")
            else:
                yield Finding("BEGIN inside a zdmigrate step, which already runs in a transaction")
        elif kind in _END and state.transaction_line is None:
            word = "COMMIT" if kind == "TRANS_STMT_COMMIT" else "ROLLBACK"
            if state.implicit_transaction:
                yield Finding(f"{word} inside a zdmigrate step ends zdmigrate's own transaction")
            else:
                yield Finding(f"{word} without a transaction in progress")
