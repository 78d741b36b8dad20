"""RenameTable: the table under a new name, the old name working until contract.

    ops.RenameTable("carts", "baskets")                # alias (default)
    ops.RenameTable("carts", "baskets", mode="view")   # in the version schema

``mode="alias"``: expand creates a simple view under the new name (``SELECT * FROM old``), which
PostgreSQL makes updatable, so new app versions read and write through it while
old ones keep using the table. contract drops the view and renames the table, in
one transaction, so the new name never disappears.

``mode="view"``: the view goes into the migration's version schema
(``zdm_<revision>``) instead, next to the views of the migration's column
renames (`RenameColumn(mode="view")`), so one view can show a table under its
new name *and* its columns under theirs; app versions that use the new names put
that schema first on their search_path. contract renames the table and drops
the view in one transaction.

Surprise: the view lists the columns the table had at expand; a column added to
the table afterwards (before contract) is not visible under the new name (in
view mode, a later migration whose operations add one is refused until this
one is contracted).
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _requirements as req
from zdmigrate.ops import _version_schema as versioned
from zdmigrate.ops._claims import Claim
from zdmigrate.ops._names import QualifiedName, render
from zdmigrate.ops.base import Operation, Requirement, Shape
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step

MODES = ("alias", "view")


class RenameTable(Operation):
    name = "rename_table"

    def __init__(self, name: str, new_name: str, *, schema: str | None = None,
                 mode: str = "alias") -> None:
        if mode not in MODES:
            raise OperationInvalid(
                f"RenameTable: mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
        self.table = QualifiedName.parse(name, schema)
        self.new = self.table.sibling(new_name)
        if self.new == self.table:
            raise OperationInvalid(f"RenameTable: {name!r} is already called {new_name!r}")
        self.mode = mode

    @property
    def uses_version_schema(self) -> bool:
        return self.mode == "view"

    @property
    def sync_triggers(self) -> bool:
        """In view mode the database serves both names: no app needs to dual-write."""
        return self.mode == "view"

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if self.mode == "view":
            return self._view_steps(phase, migration_id)
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

    def _view_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.EXPAND:
            return [versioned.expand_step(migration_id, self.table, view_name=self.new.name)]
        if phase is Phase.CONTRACT:
            rename = sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                self.table.ident, sql.Identifier(self.new.name))
            return [versioned.contract_step(
                migration_id, self.table, rename, f"rename table {self.table} to {self.new.name}")]
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.EXPAND and self.mode == "view":
            return [versioned.rollback_step(migration_id, self.table, view_name=self.new.name)]
        if phase is Phase.EXPAND:
            return [SQLStep(render(sql.SQL("DROP VIEW IF EXISTS {}").format(self.new.ident)))]
        return []

    def requirements(self) -> list[Requirement]:
        return [req.table_exists(self.table), req.relation_absent(self.new)]

    def claims(self, migration_id: str) -> list[Claim]:
        return [versioned.schema_claim(migration_id)] if self.mode == "view" else []

    def new_shape(self) -> list[Shape]:
        return [Shape(self.table, new_name=self.new.name)]

    def describe(self) -> str:
        return f"rename table {self.table} to {self.new.name}"
