"""RenameColumn: a column under a new name, with both names working until contract.

    ops.RenameColumn("users", "name", "full_name")

expand adds `new_name` with the old column's type and a two-way sync trigger
(old versions write `column`, new versions `new_name`, each sees the other's
writes); backfill copies existing rows; contract carries NOT NULL and the
default over, then drops the trigger and the old column. Every constraint, index,
comment and setting of the column is carried over, and foreign keys to it are
re-pointed; what cannot be is refused before expand (see `_column_copy`).
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops._column_copy import ColumnCopy
from zdmigrate.ops._names import QualifiedName, render


class RenameColumn(ColumnCopy):
    name = "rename_column"
    tag = "rename"

    def __init__(self, table: str, column: str, new_name: str, *, schema: str | None = None):
        if column == new_name:
            raise OperationInvalid(f"RenameColumn: {column!r} is already called {new_name!r}")
        self.table = QualifiedName.parse(table, schema)
        self.old, self.new = column, new_name
        self.up = render(sql.Identifier(column))
        self.down = render(sql.Identifier(new_name))

    def describe(self) -> str:
        return f"rename column {self.table}.{self.old} to {self.new}"
