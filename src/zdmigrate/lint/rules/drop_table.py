"""drop-table: DROP TABLE before contract breaks the app version that still uses the table."""

from __future__ import annotations

from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Example
from zdmigrate.lint.rules._drop import DropRule
from zdmigrate.phases import Phase


class DropTable(DropRule):
    id = "drop-table"
    summary = "DROP TABLE outside the contract phase"
    why = (
        "The app version that is still running reads and writes this table; its "
        "queries fail from the moment the table is gone."
    )
    fix = (
        "drop the table in the contract phase (`def contract(ctx)` or ops.DropTable), "
        "which zdmigrate enters only when no live app version uses the old table."
    )
    remove_types = ("OBJECT_TABLE", "OBJECT_FOREIGN_TABLE")
    noun = "TABLE"
    bad = (Example("DROP TABLE legacy_orders;"),)
    good = (Example("DROP TABLE legacy_orders;", phase=Phase.CONTRACT),)

    def table_of(self, name: str, state: LintState) -> str | None:
        return name.rsplit(".", 1)[-1]
