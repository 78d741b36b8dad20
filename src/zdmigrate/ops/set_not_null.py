"""SetNotNull: a column becomes NOT NULL; NULLs from old app versions are replaced by `fill`.

    ops.SetNotNull("orders", "currency", fill="'EUR'")

expand installs a trigger that replaces a NULL written into the column by
`fill`; backfill replaces existing NULLs; contract adds ``CHECK (col IS NOT
NULL) NOT VALID``, validates it, sets NOT NULL (proved by the check, no scan
under ACCESS EXCLUSIVE), drops the check and the trigger.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.ops import _claims
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._claims import Claim
from zdmigrate.ops._expressions import check_expression
from zdmigrate.ops._names import QualifiedName, generated_name, render
from zdmigrate.ops._not_null import set_not_null_steps
from zdmigrate.ops._triggers import SyncTrigger, fill_null_body
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import BackfillStep, Step


class SetNotNull(Operation):
    name = "set_not_null"
    keeps_table_shape = True

    def __init__(self, table: str, column: str, *, fill: str, schema: str | None = None) -> None:
        self.table = QualifiedName.parse(table, schema)
        self.column = column
        self.fill = check_expression(fill, "fill")

    def _trigger(self, migration_id: str) -> SyncTrigger:
        return SyncTrigger(self.table, generated_name(migration_id, "notnull", self.column),
                           fill_null_body(self.column, self.fill))

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.EXPAND:
            return list(self._trigger(migration_id).create_steps())
        if phase is Phase.BACKFILL:
            is_null = render(sql.SQL("{} IS NULL").format(sql.Identifier(self.column)))
            return [BackfillStep(self.table.name, {self.column: self.fill}, where=is_null,
                                 verify=is_null, schema=self.table.schema)]
        if phase is Phase.CONTRACT:
            return [
                *set_not_null_steps(self.table, self.column,
                                    generated_name(migration_id, self.column, "nn")),
                *self._trigger(migration_id).drop_steps(),
            ]
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.EXPAND:
            return list(self._trigger(migration_id).drop_steps())
        return []

    def requirements(self) -> list[Requirement]:
        return [
            req.table_exists(self.table),
            req.column_exists(self.table, self.column),
            req.expression_compiles(self.table, self.fill, "fill"),
        ]

    def claims(self, migration_id: str) -> list[Claim]:
        return [*_claims.sync_trigger(self.table, self._trigger(migration_id).name),
                _claims.not_null_check(self.table, generated_name(migration_id, self.column, "nn"),
                                       self.column, migration_id)]

    def describe(self) -> str:
        return f"set not null on {self.table}.{self.column}"
