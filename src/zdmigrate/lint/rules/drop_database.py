"""drop-database: DROP DATABASE has no place in a migration, in any phase."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule
from zdmigrate.phases import Phase


class DropDatabase(Rule):
    id = "drop-database"
    category = Category.CORRECTNESS
    summary = "DROP DATABASE"
    why = "It destroys every table of every app at once and cannot be rolled back or archived."
    fix = "drop databases by hand, outside migrations, after a backup."
    targets = ("DropdbStmt",)
    exempt_new_tables = False
    bad = (Example("DROP DATABASE shop_staging;"),)
    good = (Example("DROP TABLE IF EXISTS shop_staging_import;", phase=Phase.CONTRACT),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        yield Finding(f"DROP DATABASE {stmt.node.get('dbname')}")
