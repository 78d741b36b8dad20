"""CreateEnum: a new enum type, created at expand.

    ops.CreateEnum("order_status", ["new", "paid", "shipped"])

Rolling back expand drops the type.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._names import QualifiedName, render
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step


class CreateEnum(Operation):
    name = "create_enum"
    keeps_table_shape = True

    def __init__(self, name: str, values: Sequence[str], *, schema: str | None = None) -> None:
        self.type = QualifiedName.parse(name, schema, what="type")
        self.values = list(values)
        if not self.values or not all(isinstance(v, str) for v in self.values):
            raise OperationInvalid(f"CreateEnum {self.type}: values must be a non-empty list of strings")
        if len(set(self.values)) != len(self.values):
            raise OperationInvalid(f"CreateEnum {self.type}: values repeat: {self.values!r}")

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.EXPAND:
            return []
        return [SQLStep(render(sql.SQL("CREATE TYPE {} AS ENUM ({})").format(
            self.type.ident, sql.SQL(", ").join(map(sql.Literal, self.values)))))]

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.EXPAND:
            return []
        return [SQLStep(render(sql.SQL("DROP TYPE IF EXISTS {}").format(self.type.ident)))]

    def requirements(self) -> list[Requirement]:
        return [req.type_exists(self.type, present=False)]

    def describe(self) -> str:
        return f"create enum {self.type}"
