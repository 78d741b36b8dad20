"""The lifecycle shared by constraints added NOT VALID and validated at switch-read.

``ADD CONSTRAINT ... NOT VALID`` at expand is an instant (it checks only new
rows); ``VALIDATE CONSTRAINT`` at switch-read scans the existing rows while
reads and writes go on. With `fix`, a sync trigger (created before the
constraint) repairs the rows old app versions write, backfill repairs the
existing ones, and contract drops the trigger. Rolling back switch-read makes
the constraint NOT VALID again: drop and re-add in one transaction.
"""

from __future__ import annotations

from typing import ClassVar

from psycopg import sql

from zdmigrate.ops import _claims
from zdmigrate.ops._claims import Claim
from zdmigrate.ops._names import QualifiedName, render
from zdmigrate.ops._triggers import SyncTrigger
from zdmigrate.ops.base import Operation
from zdmigrate.phases import Phase
from zdmigrate.steps import BackfillStep, SQLStep, Step


class NotValidConstraint(Operation):
    """Base of AddCheck and AddForeignKey; subclasses give `_add`, `_trigger`, `_violated`."""

    keeps_table_shape = True
    #: The constraint in words, for step descriptions ("check", "foreign key").
    kind: ClassVar[str] = "constraint"
    table: QualifiedName
    constraint: str
    fix: dict[str, str]

    def _trigger(self, migration_id: str) -> SyncTrigger | None:
        """The trigger that repairs written rows with `fix` (None without `fix`)."""
        raise NotImplementedError

    def _add(self) -> str:
        """``ALTER TABLE ... ADD CONSTRAINT ... NOT VALID``."""
        raise NotImplementedError

    def _violated(self) -> str:
        """SQL boolean over a row of the table (qualified by its name): the row breaks the
        constraint, so backfill repairs it with `fix`."""
        raise NotImplementedError

    def _drop(self) -> str:
        return render(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
            self.table.ident, sql.Identifier(self.constraint)))

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        trigger = self._trigger(migration_id)
        if phase is Phase.EXPAND:
            return [*(trigger.create_steps() if trigger else []), SQLStep(self._add())]
        if phase is Phase.BACKFILL and self.fix:
            violated = self._violated()
            return [BackfillStep(self.table.name, dict(self.fix), where=violated, verify=violated,
                                 schema=self.table.schema)]
        if phase is Phase.SWITCH_READ:
            return [SQLStep(render(sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
                self.table.ident, sql.Identifier(self.constraint))))]
        if phase is Phase.CONTRACT and trigger:
            return list(trigger.drop_steps())
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.EXPAND:
            trigger = self._trigger(migration_id)
            return [SQLStep(self._drop()), *(trigger.drop_steps() if trigger else [])]
        if phase is Phase.SWITCH_READ:
            return [SQLStep(f"{self._drop()}; {self._add()}",
                            description=f"make the {self.kind} NOT VALID again, in one transaction")]
        return []

    def claims(self, migration_id: str) -> list[Claim]:
        trigger = self._trigger(migration_id)
        return _claims.sync_trigger(self.table, trigger.name) if trigger else []
