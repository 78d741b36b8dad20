"""ChangeColumnType: a column of a new type under a new name, converted both ways.

    ops.ChangeColumnType("orders", "total", "numeric(12,2)", new_name="total_amount",
                         up="total / 100.0", down="round(total_amount * 100)::int")

`up` converts a row's old value to the new type (it names the old column),
`down` the other way (it names the new column). expand adds the new column and
a two-way sync trigger; backfill converts existing rows; contract carries NOT
NULL and the default (cast to the new type) over and drops the old column.
"""

from __future__ import annotations

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._column_copy import ColumnCopy
from zdmigrate.ops._expressions import check_expression
from zdmigrate.ops._names import QualifiedName
from zdmigrate.ops._types import TypeSpec, render_type
from zdmigrate.ops.base import Requirement


class ChangeColumnType(ColumnCopy):
    name = "change_column_type"
    tag = "retype"

    def __init__(
        self,
        table: str,
        column: str,
        type: TypeSpec,
        *,
        new_name: str,
        up: str,
        down: str,
        schema: str | None = None,
    ) -> None:
        if column == new_name:
            raise OperationInvalid(
                f"ChangeColumnType: new_name must differ from {column!r}; both exist until contract")
        self.table = QualifiedName.parse(table, schema)
        self.old, self.new = column, new_name
        self.new_type = render_type(type)
        self.up = check_expression(up, "up")
        self.down = check_expression(down, "down")

    def requirements(self) -> list[Requirement]:
        assert self.new_type is not None
        return [
            *super().requirements(),
            req.expression_compiles(self.table, self.up, "up", cast_to=self.new_type),
            req.expression_compiles(self.table, self.down, "down",
                                    extra_columns={self.new: self.new_type}),
        ]

    def describe(self) -> str:
        return f"change type of {self.table}.{self.old} to {self.new_type} as {self.new}"
