"""RenameTable: the table under a new name, the old name working until contract.

    ops.RenameTable("carts", "baskets")

expand creates a simple view under the new name (``SELECT * FROM old``), which
PostgreSQL makes updatable, so new app versions read and write through it while
old ones keep using the table. contract drops the view and renames the table, in
one transaction, so the new name never disappears.

Surprise: the view lists the columns the table had at expand; a column added to
the table afterwards (before contract) is not visible under the new name.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.ops import _requirements as req
from zdmigrate.ops._names import QualifiedName, render
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step


class RenameTable(Operation):
    name = "rename_table"

    def __init__(self, name: str, new_name: str, *, schema: str | None = None) -> None:
        self.table = QualifiedName.parse(name, schema)
        self.new = self.table.sibling(new_name)

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.EXPAND:
            return [SQLStep(render(sql.SQL("CREATE VIEW {} AS SELECT * FROM {}").format(
                self.new.ident, self.table.ident)))]
        if phase is Phase.CONTRACT:
            return [SQLStep(
                render(sql.SQL("DROP VIEW {}; ALTER TABLE {} RENAME TO {}").format(
                    self.new.ident, self.table.ident, sql.Identifier(self.new.name))),
                description="replace the view by the renamed table, in one transaction",
            )]
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.EXPAND:
            return [SQLStep(render(sql.SQL("DROP VIEW IF EXISTS {}").format(self.new.ident)))]
        return []

    def requirements(self) -> list[Requirement]:
        return [req.table_exists(self.table), req.relation_absent(self.new)]

    def describe(self) -> str:
        return f"rename table {self.table} to {self.new.name}"
