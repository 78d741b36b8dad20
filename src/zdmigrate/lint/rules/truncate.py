"""truncate: TRUNCATE in a migration deletes data the running app version still serves."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule
from zdmigrate.phases import Phase


class Truncate(Rule):
    id = "truncate"
    category = Category.DESTRUCTIVE
    summary = "TRUNCATE outside the contract phase"
    why = (
        "TRUNCATE empties the table under an ACCESS EXCLUSIVE lock while the running app "
        "version still reads and writes it; nothing can be rolled back afterwards."
    )
    fix = (
        "stop using the table's data first; empty or drop it in the contract phase "
        "(or delete in batches with ctx.backfill-style batching if rows must go earlier)."
    )
    targets = ("TruncateStmt",)
    bad = (Example("TRUNCATE sessions;"),)
    good = (Example("TRUNCATE sessions;", phase=Phase.CONTRACT),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        for item in stmt.node.get("relations") or ():
            rv = item.get("RangeVar")
            if rv is not None:
                yield Finding(f"TRUNCATE {n.qualified(rv)} outside contract", table=n.relname(rv))
