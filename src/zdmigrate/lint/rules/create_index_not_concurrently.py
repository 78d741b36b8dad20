"""create-index-not-concurrently: CREATE INDEX without CONCURRENTLY blocks all writes to the table.

Warning: a plain CREATE INDEX holds a SHARE lock for the whole build; inserts,
updates and deletes wait, for minutes on a big table.
"""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


class CreateIndexNotConcurrently(Rule):
    id = "create-index-not-concurrently"
    category = Category.LOCK
    summary = "CREATE INDEX without CONCURRENTLY on an existing table"
    why = (
        "A plain CREATE INDEX holds a SHARE lock on the table for the whole build: every "
        "INSERT, UPDATE and DELETE waits until the index is built."
    )
    fix = (
        "CREATE INDEX CONCURRENTLY (zdmigrate runs it outside a transaction and drops an "
        "INVALID leftover before retrying). A table created in the same migration needs none."
    )
    targets = ("IndexStmt",)
    bad = (Example("CREATE INDEX orders_user_id_idx ON orders (user_id);"),)
    good = (
        Example("CREATE INDEX CONCURRENTLY orders_user_id_idx ON orders (user_id);"),
        Example(
            "CREATE TABLE refunds (id bigint PRIMARY KEY, order_id bigint);\n"
            "CREATE INDEX refunds_order_id_idx ON refunds (order_id);"
        ),
    )

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        node = stmt.node
        if not node.get("concurrent"):
            rel = node.get("relation")
            yield Finding(
                f"CREATE INDEX {node.get('idxname') or ''} ON {n.qualified(rel)} without "
                "CONCURRENTLY".replace("  ", " "),
                table=n.relname(rel),
            )
