"""rename-enum-value: ALTER TYPE ... RENAME VALUE breaks old versions that write the old label."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


class RenameEnumValue(Rule):
    id = "rename-enum-value"
    category = Category.DESTRUCTIVE
    summary = "ALTER TYPE ... RENAME VALUE outside the contract phase"
    why = (
        "The running app version writes and compares the old label; its inserts fail "
        "with 'invalid input value for enum' and its filters stop matching."
    )
    fix = (
        "add the new value in expand (ALTER TYPE ... ADD VALUE), have the app accept "
        "both, backfill rows to the new value, and stop writing the old one before contract."
    )
    targets = ("AlterEnumStmt",)
    exempt_new_tables = False
    bad = (Example("ALTER TYPE order_status RENAME VALUE 'shipped' TO 'dispatched';"),)
    good = (Example("ALTER TYPE order_status ADD VALUE 'dispatched';"),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        node = stmt.node
        if node.get("oldVal") is not None:
            yield Finding(
                f"RENAME VALUE {node.get('oldVal')!r} of type "
                f"{'.'.join(n.strings(node.get('typeName')))} outside contract"
            )
