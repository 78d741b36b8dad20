"""uncommitted-transaction: a BEGIN never followed by COMMIT or ROLLBACK."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


class UncommittedTransaction(Rule):
    id = "uncommitted-transaction"
    category = Category.CORRECTNESS
    summary = "a transaction opened with BEGIN and never committed"
    why = (
        "Everything after the BEGIN is rolled back when the session ends, and its locks "
        "are held until then: the migration seems to run and changes nothing, or blocks."
    )
    fix = "end the transaction with COMMIT (or leave transactions to zdmigrate's executor)."
    exempt_new_tables = False
    bad = (Example("BEGIN;\nALTER TABLE users ADD COLUMN note text;"),)
    good = (Example("BEGIN;\nALTER TABLE users ADD COLUMN note text;\nCOMMIT;"),)

    def finish(self, state: LintState) -> Iterator[Finding]:
        if state.transaction_line is not None:
            yield Finding("BEGIN without COMMIT", line=state.transaction_line)
