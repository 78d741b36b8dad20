"""truncate-cascade: TRUNCATE ... CASCADE also empties every table that references the named ones."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule
from zdmigrate.phases import Phase


class TruncateCascade(Rule):
    id = "truncate-cascade"
    category = Category.CORRECTNESS
    summary = "TRUNCATE ... CASCADE"
    why = (
        "CASCADE empties every table with a foreign key to the named tables, and theirs, "
        "recursively: tables the migration never names lose their rows, in every phase."
    )
    fix = "name every table to empty explicitly, without CASCADE, in the contract phase."
    targets = ("TruncateStmt",)
    exempt_new_tables = False
    bad = (Example("TRUNCATE users CASCADE;", phase=Phase.CONTRACT),)
    good = (Example("TRUNCATE sessions, session_events;", phase=Phase.CONTRACT),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        if stmt.node.get("behavior") == "DROP_CASCADE":
            names = [n.qualified(r.get("RangeVar")) for r in stmt.node.get("relations") or ()]
            yield Finding(f"TRUNCATE {', '.join(names)} CASCADE")
