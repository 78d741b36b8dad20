"""set-not-null: SET NOT NULL before contract makes the old version's NULL writes fail."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule
from zdmigrate.phases import Phase


class SetNotNull(Rule):
    id = "set-not-null"
    category = Category.DESTRUCTIVE
    summary = "ALTER COLUMN ... SET NOT NULL outside the contract phase"
    why = (
        "The app version still running may insert rows without a value for this column "
        "(it may not even know the column); those inserts fail once it is NOT NULL."
    )
    fix = (
        "add CHECK (col IS NOT NULL) NOT VALID in expand, backfill, VALIDATE CONSTRAINT in "
        "switch-read, then SET NOT NULL and drop the check in contract (ops.SetNotNull)."
    )
    targets = ("AlterTableStmt",)
    alter_subtypes = frozenset({"AT_SetNotNull"})
    bad = (Example("ALTER TABLE users ALTER COLUMN email SET NOT NULL;"),)
    good = (
        Example(
            "ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;\n"
            "ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;\n"
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n"
            "ALTER TABLE users DROP CONSTRAINT users_email_nn;",
            phase=Phase.CONTRACT,
        ),
    )

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        table = n.relname(stmt.node.get("relation"))
        for cmd in n.alter_cmds(stmt.node):
            if cmd.get("subtype") == "AT_SetNotNull":
                yield Finding(
                    f"SET NOT NULL on {n.qualified(stmt.node.get('relation'))}.{cmd.get('name')} "
                    "outside contract", table=table,
                )
