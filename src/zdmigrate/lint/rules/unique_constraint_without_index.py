"""unique-constraint-without-index: UNIQUE / PRIMARY KEY not built USING INDEX locks the table for the build."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._add_column import added_constraints
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule

_KINDS = {"CONSTR_UNIQUE": "UNIQUE", "CONSTR_PRIMARY": "PRIMARY KEY", "CONSTR_EXCLUSION": "EXCLUDE"}


class UniqueConstraintWithoutIndex(Rule):
    id = "unique-constraint-without-index"
    category = Category.LOCK
    summary = "UNIQUE, PRIMARY KEY or EXCLUDE constraint added to an existing table without USING INDEX"
    why = (
        "ALTER TABLE builds the index while holding an ACCESS EXCLUSIVE lock: no read or "
        "write of the table runs until the build is done."
    )
    fix = (
        "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT name UNIQUE (or "
        "PRIMARY KEY) USING INDEX that_index, which is instant."
    )
    targets = ("AlterTableStmt",)
    alter_subtypes = frozenset({"AT_AddConstraint", "AT_AddColumn"})
    bad = (Example("ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);"),)
    good = (
        Example("CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);\n"
                "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;"),
    )

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        rel = stmt.node.get("relation")
        table = n.relname(rel)
        for kind, con, col in added_constraints(stmt.node, _KINDS):
            if col is None:
                if not con.get("indexname"):
                    yield Finding(f"ADD {kind} on {n.qualified(rel)} builds its index under "
                                  "ACCESS EXCLUSIVE", table=table)
            else:
                yield Finding(
                    f"ADD COLUMN {n.qualified(rel)}.{col.get('colname')} {kind} builds "
                    "its index under ACCESS EXCLUSIVE", table=table,
                )
