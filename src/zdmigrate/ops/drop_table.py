"""DropTable: a table that new app versions no longer use is dropped (or archived) at contract.

    ops.DropTable("wishlists")                      # dropped at contract
    ops.DropTable("wishlists", archive="archive")   # moved into schema "archive" instead

Until contract the table stays as it is, for old app versions.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.ops import _requirements as req
from zdmigrate.ops._names import QualifiedName, render
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step


class DropTable(Operation):
    name = "drop_table"

    def __init__(self, name: str, *, archive: str | None = None, schema: str | None = None):
        self.table = QualifiedName.parse(name, schema)
        self.archive = archive

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.CONTRACT:
            return []
        if self.archive is None:
            return [SQLStep(render(sql.SQL("DROP TABLE {}").format(self.table.ident)))]
        archive = sql.Identifier(self.archive)
        return [
            SQLStep(render(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(archive))),
            SQLStep(render(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(self.table.ident, archive))),
        ]

    def requirements(self) -> list[Requirement]:
        out = [req.table_exists(self.table)]
        if self.archive is not None:
            out.append(req.relation_absent(QualifiedName(self.archive, self.table.name),
                                           "archive table"))
        return out

    def no_view_reason(self) -> str:
        return ("a view cannot hide a table: new app versions would still see it until "
                "contract; drop it in a migration without version_schema")

    def describe(self) -> str:
        return f"drop table {self.table}"
