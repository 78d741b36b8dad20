"""ChangeColumnType: a column of a new type under a new name, converted both ways.

    ops.ChangeColumnType("orders", "total", "numeric(12,2)", new_name="total_amount",
                         up="total / 100.0", down="round(total_amount * 100)::int")

`up` converts a row's old value to the new type (it names the old column),
`down` the other way (it names the new column). expand adds the new column and
a two-way sync trigger; backfill converts existing rows; contract carries NOT
NULL and the default (cast to the new type) over and drops the old column.

Without `new_name` the column keeps its name: every app version reads and
writes `column` throughout, a hidden shadow column ``zdm_new_<column>`` of the
new type is kept equal to ``up(column)`` by a one-way trigger (nobody writes the
shadow, so no `down` is needed), and contract swaps them in one short
transaction: drop the trigger, drop the old column, rename the shadow. Use it
when every app version works with either type (int to bigint, a numeric of
another scale); the new type shows from contract on.

    ops.ChangeColumnType("metrics", "hits", "bigint", up="hits::bigint")
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._column_copy import ColumnCopy
from zdmigrate.ops._expressions import check_expression, on_record
from zdmigrate.ops._names import QualifiedName, generated_name, render
from zdmigrate.ops._triggers import SyncTrigger
from zdmigrate.ops._types import TypeSpec, render_type
from zdmigrate.ops.base import Requirement, Shape
from zdmigrate.phases import Phase
from zdmigrate.steps import REMOVES_OLD_DEPENDENCY, SQLStep, Step


class ChangeColumnType(ColumnCopy):
    name = "change_column_type"
    tag = "retype"

    def __init__(
        self,
        table: str,
        column: str,
        type: TypeSpec,
        *,
        new_name: str | None = None,
        up: str,
        down: str | None = None,
        schema: str | None = None,
    ) -> None:
        if column == new_name:
            raise OperationInvalid(
                f"ChangeColumnType: new_name must differ from {column!r}; both exist until "
                "contract (leave new_name out to keep the name)")
        self.table = QualifiedName.parse(table, schema)
        self.keep_name = new_name is None
        self.old, self.new = column, new_name or generated_name("new", column)
        self.new_type = render_type(type)
        self.up = check_expression(up, "up")
        if self.keep_name:
            # nobody writes the shadow column: the old value itself stands for `down`
            self.down = render(sql.Identifier(column))
        elif down is None:
            raise OperationInvalid(
                f"ChangeColumnType {self.table}.{column}: with new_name, `down` must convert "
                f"{new_name!r} back for old app versions")
        else:
            self.down = check_expression(down, "down")

    def _trigger(self, migration_id: str) -> SyncTrigger:
        if not self.keep_name:
            return super()._trigger(migration_id)
        shadow = render(sql.SQL("NEW.{}").format(sql.Identifier(self.new)))
        return SyncTrigger(self.table, generated_name(migration_id, self.tag, self.old),
                           f"  {shadow} := ({on_record(self.up, 'new')});")

    def _disagree(self) -> str:
        if not self.keep_name:
            return super()._disagree()
        return render(sql.SQL("{} IS DISTINCT FROM ({})").format(
            sql.Identifier(self.new), sql.SQL(self.up)))

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        """With the name kept, contract drops the trigger and the old column and renames
        the shadow in one transaction: every app version writes `column` until then."""
        out = super().steps(phase, migration_id)
        if phase is not Phase.CONTRACT or not self.keep_name:
            return out
        t = self.table.ident
        drop_old = render(sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(t, sql.Identifier(self.old)))
        trigger_drops = [s.sql for s in self._trigger(migration_id).drop_steps()]
        merged = {*trigger_drops, drop_old, self._old_nullable().sql}
        swap = SQLStep(
            "; ".join([*trigger_drops, drop_old, render(sql.SQL(
                "ALTER TABLE {} RENAME COLUMN {} TO {}").format(
                t, sql.Identifier(self.new), sql.Identifier(self.old)))]),
            description=f"swap {self.new} in for {self.table}.{self.old}, in one transaction",
            role=REMOVES_OLD_DEPENDENCY,  # the sync trigger goes: old versions need fleet proof
        )
        return [swap if isinstance(s, SQLStep) and s.sql == drop_old else s
                for s in out if not (isinstance(s, SQLStep) and s.sql in merged - {drop_old})]

    def requirements(self) -> list[Requirement]:
        assert self.new_type is not None
        return [
            *super().requirements(),
            req.expression_compiles(self.table, self.up, "up", cast_to=self.new_type),
            req.expression_compiles(self.table, self.down, "down",
                                    extra_columns={self.new: self.new_type}),
        ]

    def new_shape(self) -> list[Shape] | None:
        # with the name kept, the view could show neither column: the old one is
        # dropped at contract (a view on it would block that), and the shadow is
        # overwritten from the old one on every write
        return None if self.keep_name else [Shape(self.table, hide=(self.old,), adds=(self.new,))]

    def no_view_reason(self) -> str:
        return ("with the name kept, the type changes in place at contract, which a view "
                "cannot show; give new_name (the view shows the new column under it), or "
                "change the type in a migration without version_schema")

    def describe(self) -> str:
        if self.keep_name:
            return f"change type of {self.table}.{self.old} to {self.new_type}"
        return f"change type of {self.table}.{self.old} to {self.new_type} as {self.new}"
