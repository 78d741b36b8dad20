"""alter-domain-add-constraint: ALTER DOMAIN ... ADD CONSTRAINT checks every column of the domain under lock."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


class AlterDomainAddConstraint(Rule):
    id = "alter-domain-add-constraint"
    category = Category.LOCK
    summary = "ALTER DOMAIN ... ADD CONSTRAINT without NOT VALID"
    why = (
        "PostgreSQL checks every row of every table with a column of that domain, locking "
        "each table against writes for the scan; which tables are hit is not visible in the migration."
    )
    fix = (
        "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later step; or put a "
        "CHECK ... NOT VALID on the tables themselves."
    )
    targets = ("AlterDomainStmt",)
    exempt_new_tables = False
    bad = (Example("ALTER DOMAIN price ADD CONSTRAINT price_positive CHECK (VALUE > 0);"),)
    good = (Example("ALTER DOMAIN price ADD CONSTRAINT price_positive CHECK (VALUE > 0) NOT VALID;"),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        node = stmt.node
        if node.get("subtype") != "C":
            return
        con = (node.get("def") or {}).get("Constraint") or {}
        if not con.get("skip_validation"):
            yield Finding(
                f"ADD CONSTRAINT {con.get('conname') or ''} on domain "
                f"{'.'.join(n.strings(node.get('typeName')))}".replace("  ", " ")
            )
