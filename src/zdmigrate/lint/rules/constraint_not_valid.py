"""constraint-not-valid: FOREIGN KEY or CHECK added without NOT VALID scans the table under lock.

Warning: adding a validated foreign key holds SHARE ROW EXCLUSIVE on both tables
while every row is checked; a validated CHECK holds ACCESS EXCLUSIVE for the scan.
"""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._add_column import added_constraints
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule

_KINDS = {"CONSTR_FOREIGN": "FOREIGN KEY", "CONSTR_CHECK": "CHECK"}


class ConstraintNotValid(Rule):
    id = "constraint-not-valid"
    category = Category.LOCK
    summary = "FOREIGN KEY or CHECK constraint added to an existing table without NOT VALID"
    why = (
        "PostgreSQL checks every existing row while holding the lock taken by ALTER TABLE "
        "(ACCESS EXCLUSIVE for CHECK, SHARE ROW EXCLUSIVE on both tables for a foreign "
        "key): writes wait for the whole scan."
    )
    fix = (
        "ADD CONSTRAINT ... NOT VALID (instant; new rows are checked at once), then "
        "VALIDATE CONSTRAINT in a later step or phase (it scans under SHARE UPDATE "
        "EXCLUSIVE, which lets reads and writes go on). A column added with an inline "
        "REFERENCES cannot be NOT VALID: add the column, then the constraint."
    )
    targets = ("AlterTableStmt",)
    alter_subtypes = frozenset({"AT_AddConstraint", "AT_AddColumn"})
    bad = (
        Example("ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) "
                "REFERENCES users (id);"),
    )
    good = (
        Example("ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) "
                "REFERENCES users (id) NOT VALID;\n"
                "ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;"),
    )

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        rel = stmt.node.get("relation")
        table = n.relname(rel)
        for kind, con, col in added_constraints(stmt.node, _KINDS):
            if col is None:
                if not con.get("skip_validation"):
                    name = con.get("conname") or ""
                    yield Finding(f"{kind} constraint {name} on {n.qualified(rel)} without NOT VALID"
                                  .replace("  ", " "), table=table)
            else:
                yield Finding(
                    f"ADD COLUMN {n.qualified(rel)}.{col.get('colname')} with an inline "
                    f"{kind} (which cannot be NOT VALID)", table=table,
                )
