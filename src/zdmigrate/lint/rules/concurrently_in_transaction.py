"""concurrently-in-transaction: a CONCURRENTLY statement inside BEGIN ... COMMIT fails at once."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


class ConcurrentlyInTransaction(Rule):
    id = "concurrently-in-transaction"
    category = Category.LOCK
    summary = "CREATE/DROP INDEX, REINDEX or DETACH PARTITION CONCURRENTLY inside a transaction block"
    why = (
        "PostgreSQL refuses CONCURRENTLY inside a transaction block, so the migration "
        "fails; people then drop CONCURRENTLY and take the lock it was meant to avoid."
    )
    fix = (
        "run the statement on its own, outside BEGIN/COMMIT: zdmigrate runs each "
        "CONCURRENTLY step in autocommit mode by itself."
    )
    targets = ("IndexStmt", "DropStmt", "ReindexStmt", "AlterTableStmt")
    alter_subtypes = frozenset({"AT_DetachPartition"})
    exempt_new_tables = False
    bad = (Example("BEGIN;\nCREATE INDEX CONCURRENTLY orders_user_id_idx ON orders (user_id);\nCOMMIT;"),)
    good = (Example("CREATE INDEX CONCURRENTLY orders_user_id_idx ON orders (user_id);"),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        if state.transaction_line is None:
            return
        node, kind = stmt.node, stmt.kind
        concurrent = False
        if kind in ("IndexStmt", "DropStmt"):
            concurrent = bool(node.get("concurrent"))
        elif kind == "ReindexStmt":
            concurrent = n.defelem_true(node.get("params"), "concurrently")
        else:
            concurrent = any(
                ((cmd.get("def") or {}).get("PartitionCmd") or {}).get("concurrent")
                for cmd in n.alter_cmds(node)
            )
        if concurrent:
            yield Finding(
                f"a CONCURRENTLY statement inside the transaction opened on line "
                f"{state.transaction_line}"
            )
