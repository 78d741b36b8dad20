"""reindex-not-concurrently: REINDEX without CONCURRENTLY blocks writes (and reads using the index)."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


class ReindexNotConcurrently(Rule):
    id = "reindex-not-concurrently"
    category = Category.LOCK
    summary = "REINDEX without CONCURRENTLY"
    why = (
        "A plain REINDEX locks out writes to the table and takes ACCESS EXCLUSIVE on the "
        "index, so queries that would use it wait too, for the whole rebuild."
    )
    fix = "REINDEX (CONCURRENTLY) on PostgreSQL 12 and later."
    targets = ("ReindexStmt",)
    bad = (Example("REINDEX INDEX orders_user_id_idx;"),)
    good = (Example("REINDEX (CONCURRENTLY) INDEX orders_user_id_idx;"),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        node = stmt.node
        if n.defelem_true(node.get("params"), "concurrently"):
            return
        target = n.qualified(node.get("relation")) if node.get("relation") else node.get("name", "")
        kind = node.get("kind", "").removeprefix("REINDEX_OBJECT_")
        fix = None
        if state.pg_version < 12:
            fix = (
                "PostgreSQL before 12 has no REINDEX CONCURRENTLY: CREATE INDEX CONCURRENTLY a "
                "new index, then DROP INDEX CONCURRENTLY the old one (in contract)."
            )
        yield Finding(f"REINDEX {kind} {target} without CONCURRENTLY", fix=fix)
