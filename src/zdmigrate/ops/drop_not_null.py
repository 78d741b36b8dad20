"""DropNotNull: a NOT NULL column may hold NULL from expand on.

    ops.DropNotNull("users", "phone")
    ops.DropNotNull("users", "phone", down="''")      # old readers never see NULL

Without `down`, expand drops NOT NULL (an instant; it only relaxes), so old app
versions must cope with NULLs written by new ones. Rolling back expand restores
NOT NULL through a validated CHECK, and fails if NULLs were written meanwhile.

With `down` (an SQL expression over the row), the column stays NOT NULL until
contract: a trigger replaces a NULL that a new app version writes by `down`, so
old readers never see NULL. contract drops NOT NULL, then the trigger. Rolling
back expand drops the trigger.

Surprise: with `down`, a NULL written before contract is stored as `down`.
"""

from __future__ import annotations

from zdmigrate.ops import _claims
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._claims import Claim
from zdmigrate.ops._expressions import check_expression
from zdmigrate.ops._names import QualifiedName, generated_name
from zdmigrate.ops._not_null import column_not_null, drop_not_null_sql, set_not_null_steps
from zdmigrate.ops._triggers import SyncTrigger, fill_null_body
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step


class DropNotNull(Operation):
    name = "drop_not_null"
    keeps_table_shape = True

    def __init__(
        self, table: str, column: str, *, down: str | None = None, schema: str | None = None
    ) -> None:
        self.table = QualifiedName.parse(table, schema)
        self.column = column
        self.down = check_expression(down, "down") if down is not None else None

    def _trigger(self, migration_id: str) -> SyncTrigger | None:
        if self.down is None:
            return None
        return SyncTrigger(self.table, generated_name(migration_id, "nullable", self.column),
                           fill_null_body(self.column, self.down))

    def _drop_not_null(self) -> SQLStep:
        return SQLStep(drop_not_null_sql(self.table, self.column))

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        trigger = self._trigger(migration_id)
        if phase is Phase.EXPAND:
            return list(trigger.create_steps()) if trigger else [self._drop_not_null()]
        if phase is Phase.CONTRACT and trigger:
            return [self._drop_not_null(), *trigger.drop_steps()]
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.EXPAND:
            return []
        trigger = self._trigger(migration_id)
        if trigger:
            return list(trigger.drop_steps())
        return list(set_not_null_steps(self.table, self.column,
                                       generated_name(migration_id, self.column, "nn")))

    def requirements(self) -> list[Requirement]:
        return [
            req.table_exists(self.table),
            req.column_exists(self.table, self.column),
            Requirement(f"SELECT {column_not_null(self.table, self.column)}",
                        f"column {self.column!r} of table {self.table} is already nullable"),
            *([req.expression_compiles(self.table, self.down, "down")] if self.down else []),
        ]

    def claims(self, migration_id: str) -> list[Claim]:
        trigger = self._trigger(migration_id)
        if trigger:
            return _claims.sync_trigger(self.table, trigger.name)
        return [_claims.not_null_check(self.table, generated_name(migration_id, self.column, "nn"),
                                       self.column, migration_id)]

    def describe(self) -> str:
        return f"drop not null on {self.table}.{self.column}"
