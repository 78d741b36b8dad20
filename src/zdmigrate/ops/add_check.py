"""AddCheck: a CHECK constraint added NOT VALID at expand and validated at switch-read.

    ops.AddCheck("products", "products_price_positive", "price > 0",
                 fix={"price": "greatest(price, 1)"})

With `fix` (column -> SQL expression over the row), a trigger repairs rows that
old app versions write in violation of the check, and backfill repairs existing
rows, so VALIDATE at switch-read succeeds and nobody's write fails. Without
`fix`, every write must satisfy the check from expand on.
"""

from __future__ import annotations

from collections.abc import Mapping

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _claims
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._claims import Claim
from zdmigrate.ops._expressions import check_expression
from zdmigrate.ops._names import QualifiedName, generated_name, render
from zdmigrate.ops._triggers import SyncTrigger, fix_body
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import BackfillStep, SQLStep, Step


class AddCheck(Operation):
    name = "add_check"
    keeps_table_shape = True

    def __init__(
        self,
        table: str,
        name: str,
        expression: str,
        *,
        fix: Mapping[str, str] | None = None,
        schema: str | None = None,
    ) -> None:
        self.table = QualifiedName.parse(table, schema)
        self.constraint = name
        self.expression = check_expression(expression, "check expression")
        if fix is not None and (not isinstance(fix, Mapping) or not fix):
            raise OperationInvalid(
                f"AddCheck {name}: fix must map column names to SQL expressions, got {fix!r}")
        self.fix = {c: check_expression(e, f"fix for {c!r}") for c, e in (fix or {}).items()}

    def _trigger(self, migration_id: str) -> SyncTrigger | None:
        if not self.fix:
            return None
        return SyncTrigger(self.table, generated_name(migration_id, "check", self.constraint),
                           fix_body(self.expression, self.fix))

    def _add(self) -> str:
        return render(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({}) NOT VALID").format(
            self.table.ident, sql.Identifier(self.constraint), sql.SQL(self.expression)))

    def _drop(self) -> str:
        return render(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
            self.table.ident, sql.Identifier(self.constraint)))

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        trigger = self._trigger(migration_id)
        if phase is Phase.EXPAND:
            return [*(trigger.create_steps() if trigger else []), SQLStep(self._add())]
        if phase is Phase.BACKFILL and self.fix:
            violated = f"({self.expression}) IS FALSE"
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
                            description="make the check NOT VALID again, in one transaction")]
        return []

    def requirements(self) -> list[Requirement]:
        return [
            req.table_exists(self.table),
            req.constraint_absent(self.table, self.constraint),
            req.expression_compiles(self.table, self.expression, "check expression",
                                    cast_to="boolean"),
            *(req.column_exists(self.table, c) for c in self.fix),
            *(req.expression_compiles(self.table, e, f"fix for {c!r}") for c, e in self.fix.items()),
        ]

    def claims(self, migration_id: str) -> list[Claim]:
        trigger = self._trigger(migration_id)
        return _claims.sync_trigger(self.table, trigger.name) if trigger else []

    def describe(self) -> str:
        return f"add check {self.constraint} on {self.table}"
