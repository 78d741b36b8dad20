"""set-not-null-without-check: SET NOT NULL scans the table under ACCESS EXCLUSIVE unless a CHECK proves it.

Since PostgreSQL 12, SET NOT NULL skips the scan when a validated
``CHECK (col IS NOT NULL)`` constraint already proves no row is NULL. The
linter accepts the SET NOT NULL when this migration validated such a check
earlier (in this phase or an earlier one).
"""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule
from zdmigrate.phases import Phase


class SetNotNullWithoutCheck(Rule):
    id = "set-not-null-without-check"
    category = Category.LOCK
    summary = "SET NOT NULL without a validated CHECK (col IS NOT NULL) before it"
    why = (
        "PostgreSQL scans the whole table to prove there is no NULL while holding an "
        "ACCESS EXCLUSIVE lock: no reads or writes for the duration of the scan."
    )
    fix = (
        "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID, then VALIDATE CONSTRAINT c "
        "(no blocking lock), then SET NOT NULL (instant on PostgreSQL 12+), then DROP "
        "CONSTRAINT c."
    )
    targets = ("AlterTableStmt",)
    alter_subtypes = frozenset({"AT_SetNotNull"})
    bad = (Example("ALTER TABLE users ALTER COLUMN email SET NOT NULL;", phase=Phase.CONTRACT),)
    good = (
        Example(
            "ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;\n"
            "ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;\n"
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
            phase=Phase.CONTRACT,
        ),
    )

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        rel = stmt.node.get("relation")
        table = (n.relname(rel) or "").lower()
        for cmd in n.alter_cmds(stmt.node):
            if cmd.get("subtype") != "AT_SetNotNull":
                continue
            column = cmd.get("name", "")
            what = f"SET NOT NULL on {n.qualified(rel)}.{column}"
            if state.pg_version < 12:
                yield Finding(
                    f"{what} on PostgreSQL {state.pg_version}", table=table,
                    fix="before PostgreSQL 12 SET NOT NULL always scans: keep a validated "
                    "CHECK (col IS NOT NULL) constraint instead of NOT NULL, or upgrade.",
                )
            elif (table, column) not in state.validated_not_null:
                yield Finding(f"{what} without a validated CHECK ({column} IS NOT NULL)", table=table)
