"""detach-partition-not-concurrently: DETACH PARTITION without CONCURRENTLY locks the parent table."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


class DetachPartitionNotConcurrently(Rule):
    id = "detach-partition-not-concurrently"
    category = Category.LOCK
    summary = "ALTER TABLE ... DETACH PARTITION without CONCURRENTLY"
    why = (
        "A plain DETACH PARTITION takes ACCESS EXCLUSIVE on the partitioned table: every "
        "query of any partition waits."
    )
    fix = "DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+), which zdmigrate runs outside a transaction."
    targets = ("AlterTableStmt",)
    alter_subtypes = frozenset({"AT_DetachPartition"})
    bad = (Example("ALTER TABLE events DETACH PARTITION events_2019;"),)
    good = (Example("ALTER TABLE events DETACH PARTITION events_2019 CONCURRENTLY;"),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        rel = stmt.node.get("relation")
        for cmd in n.alter_cmds(stmt.node):
            if cmd.get("subtype") != "AT_DetachPartition":
                continue
            part = (cmd.get("def") or {}).get("PartitionCmd") or {}
            if part.get("concurrent"):
                continue
            fix = None
            if state.pg_version < 14:
                fix = (
                    "PostgreSQL before 14 has no DETACH ... CONCURRENTLY: detach in a quiet "
                    "window with a short lock_timeout and retries, or upgrade."
                )
            yield Finding(
                f"DETACH PARTITION {n.qualified(part.get('name'))} from {n.qualified(rel)} "
                "without CONCURRENTLY", table=n.relname(rel), fix=fix,
            )
