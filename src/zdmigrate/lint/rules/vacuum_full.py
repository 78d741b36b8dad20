"""vacuum-full: VACUUM FULL rewrites the table under ACCESS EXCLUSIVE."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


class VacuumFull(Rule):
    id = "vacuum-full"
    category = Category.LOCK
    summary = "VACUUM FULL"
    why = "VACUUM FULL rewrites the table holding an ACCESS EXCLUSIVE lock: nothing reads or writes it meanwhile."
    fix = "use plain VACUUM (no blocking lock), or pg_repack / pg_squeeze to compact online."
    targets = ("VacuumStmt",)
    exempt_new_tables = False
    bad = (Example("VACUUM FULL orders;"),)
    good = (Example("VACUUM (ANALYZE) orders;"),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        if n.defelem_true(stmt.node.get("options"), "full"):
            names = [
                n.qualified((r.get("VacuumRelation") or {}).get("relation"))
                for r in stmt.node.get("rels") or ()
            ]
            yield Finding(f"VACUUM FULL {', '.join(names) or '(every table)'}")
