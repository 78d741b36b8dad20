"""RenameColumn: a column under a new name, with both names working until contract.

    ops.RenameColumn("users", "name", "full_name")               # copy (default)
    ops.RenameColumn("users", "name", "full_name", mode="view")  # zero-copy

``mode="copy"``: expand adds `new_name` with the old column's type and a two-way
sync trigger (old versions write `column`, new versions `new_name`, each sees
the other's writes); backfill copies existing rows; contract carries NOT NULL
and the default over, then drops the trigger and the old column. Every
constraint, index, comment and setting of the column is carried over, and
foreign keys to it are re-pointed; what cannot be is refused before expand (see
`_column_copy`). Works for every client as it is.

``mode="view"``: no row is touched. expand creates the migration's version
schema (``zdm_<revision>``) with a view of the table that shows the column under
its new name; app versions that read the new name put that schema first on
their search_path (`zdmigrate.runtime` does it for SQLAlchemy engines). contract
renames the physical column and drops the view in one short transaction. Every
index, constraint, foreign key, default, comment and grant stays, because the
column itself never changes. See `_version_schema` for what could surprise.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _requirements as req
from zdmigrate.ops import _version_schema as versioned
from zdmigrate.ops._claims import Claim
from zdmigrate.ops._column_copy import ColumnCopy
from zdmigrate.ops._names import QualifiedName, render
from zdmigrate.ops.base import Requirement, Shape
from zdmigrate.phases import Phase
from zdmigrate.steps import Step

MODES = ("copy", "view")


class RenameColumn(ColumnCopy):
    name = "rename_column"
    tag = "rename"

    def __init__(self, table: str, column: str, new_name: str, *, schema: str | None = None,
                 mode: str = "copy"):
        if column == new_name:
            raise OperationInvalid(f"RenameColumn: {column!r} is already called {new_name!r}")
        if mode not in MODES:
            raise OperationInvalid(
                f"RenameColumn: mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
        self.table = QualifiedName.parse(table, schema)
        self.old, self.new = column, new_name
        self.mode = mode
        self.up = render(sql.Identifier(column))
        self.down = render(sql.Identifier(new_name))

    @property
    def uses_version_schema(self) -> bool:
        return self.mode == "view"

    @property
    def sync_triggers(self) -> bool:
        """In view mode the database serves both names: no app needs to dual-write."""
        return self.mode == "view"

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if self.mode == "copy":
            return super().steps(phase, migration_id)
        if phase is Phase.EXPAND:
            return [versioned.expand_step(migration_id, self.table, column=(self.old, self.new))]
        if phase is Phase.CONTRACT:
            return [versioned.contract_column_step(migration_id, self.table, self.old, self.new)]
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if self.mode == "copy":
            return super().rollback_steps(phase, migration_id)
        if phase is Phase.EXPAND:
            return [versioned.rollback_step(migration_id, self.table, column=(self.old, self.new))]
        return []

    def requirements(self) -> list[Requirement]:
        if self.mode == "copy":
            return super().requirements()
        # the column itself never changes: everything on it stays, nothing to refuse
        return [req.table_exists(self.table), req.column_exists(self.table, self.old),
                req.column_absent(self.table, self.new)]

    def claims(self, migration_id: str) -> list[Claim]:
        if self.mode == "copy":
            return super().claims(migration_id)
        return [versioned.schema_claim(migration_id)]

    def contract_requirements(self, migration_id: str) -> list[Requirement]:
        return super().contract_requirements(migration_id) if self.mode == "copy" else []

    def new_shape(self) -> list[Shape]:
        if self.mode == "view":
            return [Shape(self.table, show_as=((self.old, self.new),))]
        return [Shape(self.table, hide=(self.old,), adds=(self.new,))]

    def describe(self) -> str:
        how = " through a view" if self.mode == "view" else ""
        return f"rename column {self.table}.{self.old} to {self.new}{how}"
