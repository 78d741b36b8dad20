"""cluster: CLUSTER rewrites the table under ACCESS EXCLUSIVE."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


class Cluster(Rule):
    id = "cluster"
    category = Category.LOCK
    summary = "CLUSTER"
    why = "CLUSTER rewrites the table in index order holding an ACCESS EXCLUSIVE lock for the whole rewrite."
    fix = "use pg_repack (with --order-by) to reorder online, or leave the physical order alone."
    targets = ("ClusterStmt",)
    exempt_new_tables = False
    bad = (Example("CLUSTER orders USING orders_created_at_idx;"),)
    good = (Example("ANALYZE orders;"),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        rel = stmt.node.get("relation")
        yield Finding(f"CLUSTER {n.qualified(rel) if rel else '(every clustered table)'}")
