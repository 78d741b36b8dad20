"""DropDefault: a column loses its default at contract.

    ops.DropDefault("orders", "legacy_code")

Old app versions may rely on the default when they insert without the column,
so it is dropped only at contract, once they are gone.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.ops import _requirements as req
from zdmigrate.ops._names import QualifiedName, render
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step


class DropDefault(Operation):
    name = "drop_default"
    keeps_table_shape = True

    def __init__(self, table: str, column: str, *, schema: str | None = None) -> None:
        self.table = QualifiedName.parse(table, schema)
        self.column = column

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.CONTRACT:
            return [SQLStep(render(sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT").format(
                self.table.ident, sql.Identifier(self.column))))]
        return []

    def requirements(self) -> list[Requirement]:
        return [req.table_exists(self.table), req.column_exists(self.table, self.column)]

    def describe(self) -> str:
        return f"drop default of {self.table}.{self.column}"
