"""drop-index-not-concurrently: DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule
from zdmigrate.lint.rules._drop import dropped_names
from zdmigrate.phases import Phase


class DropIndexNotConcurrently(Rule):
    id = "drop-index-not-concurrently"
    category = Category.LOCK
    summary = "DROP INDEX without CONCURRENTLY"
    why = (
        "A plain DROP INDEX takes an ACCESS EXCLUSIVE lock on the index's table: it waits "
        "behind running queries and every query queues behind it."
    )
    fix = "DROP INDEX CONCURRENTLY (zdmigrate runs it outside a transaction)."
    targets = ("DropStmt",)
    remove_types = ("OBJECT_INDEX",)
    bad = (Example("DROP INDEX orders_created_at_idx;", phase=Phase.CONTRACT),)
    good = (Example("DROP INDEX CONCURRENTLY orders_created_at_idx;", phase=Phase.CONTRACT),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        node = stmt.node
        if node.get("removeType") == "OBJECT_INDEX" and not node.get("concurrent"):
            for name in dropped_names(node):
                yield Finding(
                    f"DROP INDEX {name} without CONCURRENTLY",
                    table=state.index_tables.get(name.rsplit(".", 1)[-1]),
                )
