"""enum-add-value-in-transaction: ALTER TYPE ... ADD VALUE in a transaction fails before PostgreSQL 12."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


class EnumAddValueInTransaction(Rule):
    id = "enum-add-value-in-transaction"
    category = Category.LOCK
    summary = "ALTER TYPE ... ADD VALUE inside a transaction block on PostgreSQL before 12"
    why = (
        "PostgreSQL before 12 refuses ADD VALUE inside a transaction block, and zdmigrate "
        "runs each ordinary step inside one: the phase fails half-way."
    )
    fix = (
        "target PostgreSQL 12+ (where it is allowed, though the value cannot be used "
        "until commit), or run the statement as an autocommit step (SQLStep(..., autocommit=True))."
    )
    targets = ("AlterEnumStmt",)
    exempt_new_tables = False
    bad = (Example("BEGIN;\nALTER TYPE order_status ADD VALUE 'refunded';\nCOMMIT;", pg_version=11),)
    good = (Example("BEGIN;\nALTER TYPE order_status ADD VALUE 'refunded';\nCOMMIT;", pg_version=12),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        node = stmt.node
        if node.get("oldVal") is None and state.pg_version < 12 and state.in_transaction_block:
            yield Finding(
                f"ADD VALUE {node.get('newVal')!r} to {'.'.join(n.strings(node.get('typeName')))} "
                f"inside a transaction block on PostgreSQL {state.pg_version}"
            )
