"""DropConstraint: a CHECK, FOREIGN KEY, UNIQUE or EXCLUDE constraint dropped at contract.

    ops.DropConstraint("posts", "posts_title_length")
    ops.DropConstraint("tickets", "tickets_sold_by_event_key")   # multi-column: the same

Old app versions rely on the constraint: a unique key for ON CONFLICT or
deduplication, a foreign key or check for the integrity of what they read. So
it stays, and binds every writer, until contract, when no old version runs; then
``DROP CONSTRAINT`` is an instant catalog change (a unique constraint takes its
index with it) under a brief ACCESS EXCLUSIVE lock, on the referenced table too
for a foreign key.

Surprise: new app versions must still satisfy the constraint until contract.
pgroll's ``up``/``down`` (a copy of each column without the constraint, under
another name) is not offered: in zdmigrate apps name physical columns, so it
would mean a column rename for the app; if new versions must write what the
constraint forbids before contract, use ChangeColumnType/RenameColumn to a new
column without the constraint.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._names import QualifiedName, render
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step


class DropConstraint(Operation):
    name = "drop_constraint"
    keeps_table_shape = True

    def __init__(self, table: str, name: str, *, schema: str | None = None) -> None:
        self.table = QualifiedName.parse(table, schema)
        if not isinstance(name, str) or not name:
            raise OperationInvalid(
                f"DropConstraint on {self.table}: the constraint name must be a non-empty "
                f"string, got {name!r}")
        self.constraint = name

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.CONTRACT:
            return []
        return [SQLStep(render(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
            self.table.ident, sql.Identifier(self.constraint))))]

    def requirements(self) -> list[Requirement]:
        return [req.table_exists(self.table), req.constraint_exists(self.table, self.constraint)]

    def describe(self) -> str:
        return f"drop constraint {self.constraint} on {self.table}"
