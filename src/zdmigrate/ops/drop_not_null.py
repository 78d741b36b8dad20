"""DropNotNull: a NOT NULL column may hold NULL from expand on.

    ops.DropNotNull("users", "phone")

expand drops NOT NULL (an instant; it only relaxes). Old app versions must cope
with NULLs written by new ones. Rolling back expand restores NOT NULL through a
validated CHECK, and fails if NULLs were written meanwhile.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.ops import _requirements as req
from zdmigrate.ops._names import QualifiedName, generated_name, render
from zdmigrate.ops._not_null import column_not_null, set_not_null_steps
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step


class DropNotNull(Operation):
    name = "drop_not_null"

    def __init__(self, table: str, column: str, *, schema: str | None = None) -> None:
        self.table = QualifiedName.parse(table, schema)
        self.column = column

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.EXPAND:
            return [SQLStep(render(sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(
                self.table.ident, sql.Identifier(self.column))))]
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.EXPAND:
            return list(set_not_null_steps(self.table, self.column,
                                           generated_name(migration_id, self.column, "nn")))
        return []

    def requirements(self) -> list[Requirement]:
        return [
            req.table_exists(self.table),
            req.column_exists(self.table, self.column),
            Requirement(f"SELECT {column_not_null(self.table, self.column)}",
                        f"column {self.column!r} of table {self.table} is already nullable"),
        ]

    def describe(self) -> str:
        return f"drop not null on {self.table}.{self.column}"
