"""AddEnumValue: a new value in an enum type, added at expand.

    ops.AddEnumValue("order_status", "refunded", after="shipped")

Warning: PostgreSQL cannot remove a value from an enum, so rolling back expand
leaves the value in place (the rollback does nothing). Old app versions must
tolerate reading the new value once new versions write it.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._names import QualifiedName, render
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step


class AddEnumValue(Operation):
    name = "add_enum_value"
    keeps_table_shape = True

    def __init__(
        self, enum: str, value: str, *, before: str | None = None, after: str | None = None,
        schema: str | None = None,
    ) -> None:
        if before is not None and after is not None:
            raise OperationInvalid(f"AddEnumValue {value!r}: give before= or after=, not both")
        self.type = QualifiedName.parse(enum, schema, what="type")
        self.value, self.before, self.after = value, before, after

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.EXPAND:
            return []
        where: sql.Composable = sql.SQL("")
        if self.before is not None:
            where = sql.SQL(" BEFORE {}").format(sql.Literal(self.before))
        elif self.after is not None:
            where = sql.SQL(" AFTER {}").format(sql.Literal(self.after))
        return [SQLStep(render(sql.SQL("ALTER TYPE {} ADD VALUE IF NOT EXISTS {}{}").format(
            self.type.ident, sql.Literal(self.value), where)))]

    def requirements(self) -> list[Requirement]:
        return [req.type_exists(self.type)]

    def describe(self) -> str:
        return f"add value {self.value!r} to enum {self.type}"
