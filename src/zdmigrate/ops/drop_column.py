"""DropColumn: new app versions stop using a column; contract drops it.

    ops.DropColumn("users", "legacy_flags")                       # made nullable at expand
    ops.DropColumn("orders", "total_cents", down="round(total * 100)")  # kept filled

expand makes the column harmless for new app versions, which no longer write
it: without `down` its NOT NULL (if any) is dropped; with `down` a sync trigger
fills it from the row for old readers (it stays NOT NULL). contract drops its
NOT NULL, then the trigger and the column.

Surprise: rolling back expand restores NOT NULL (through a validated CHECK), and
fails if new app versions wrote NULLs meanwhile; fill them, then roll back again.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.ops import _claims, _memo
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._claims import Claim
from zdmigrate.ops._expressions import check_expression
from zdmigrate.ops._names import QualifiedName, generated_name, render
from zdmigrate.ops._not_null import (
    column_not_null,
    conditional_set_not_null_steps,
    do_if,
    drop_not_null_sql,
)
from zdmigrate.ops._triggers import SyncTrigger, derived_body
from zdmigrate.ops.base import Operation, Requirement, Shape
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step


class DropColumn(Operation):
    name = "drop_column"

    def __init__(
        self, table: str, column: str, *, down: str | None = None, schema: str | None = None
    ) -> None:
        self.table = QualifiedName.parse(table, schema)
        self.column = column
        self.down = check_expression(down, "down") if down is not None else None

    def _trigger(self, migration_id: str) -> SyncTrigger | None:
        if self.down is None:
            return None
        return SyncTrigger(self.table, generated_name(migration_id, "drop", self.column),
                           derived_body(self.column, self.down))

    def _memo(self, migration_id: str) -> QualifiedName:
        return self.table.sibling(generated_name(migration_id, "drop", self.column, "memo"))

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        trigger = self._trigger(migration_id)
        if phase is Phase.EXPAND:
            if trigger:
                return list(trigger.create_steps())
            memo = self._memo(migration_id)
            was_not_null = column_not_null(self.table, self.column)
            return [
                _memo.save_step(memo, f"jsonb_build_object('not_null', {was_not_null})"),
                do_if(was_not_null, [drop_not_null_sql(self.table, self.column)]),
            ]
        if phase is Phase.CONTRACT:
            # with a trigger the column is still NOT NULL: it must not be once the trigger
            # that fills it is gone (each step is its own transaction, new versions write on)
            out: list[Step] = (
                [SQLStep(drop_not_null_sql(self.table, self.column)), *trigger.drop_steps()] if trigger
                else [_memo.drop_step(self._memo(migration_id))]
            )
            out.append(SQLStep(render(sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(
                self.table.ident, sql.Identifier(self.column)))))
            return out
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.EXPAND:
            return []
        trigger = self._trigger(migration_id)
        if trigger:
            return list(trigger.drop_steps())
        memo = self._memo(migration_id)
        restore = f"coalesce({_memo.read(memo, 'not_null')}::boolean, false)"
        return [
            *conditional_set_not_null_steps(
                self.table, self.column, generated_name(migration_id, self.column, "nn"), restore),
            _memo.drop_step(memo),
        ]

    def requirements(self) -> list[Requirement]:
        out = [req.table_exists(self.table), req.column_exists(self.table, self.column)]
        if self.down is not None:
            out.append(req.expression_compiles(self.table, self.down, "down"))
        return out

    def claims(self, migration_id: str) -> list[Claim]:
        trigger = self._trigger(migration_id)
        if trigger:
            return _claims.sync_trigger(self.table, trigger.name)
        return [_claims.memo(self._memo(migration_id), f"whether {self.column} was NOT NULL"),
                _claims.not_null_check(self.table, generated_name(migration_id, self.column, "nn"),
                                       self.column, migration_id)]

    def new_shape(self) -> list[Shape]:
        return [Shape(self.table, hide=(self.column,))]

    def describe(self) -> str:
        return f"drop column {self.table}.{self.column}"
