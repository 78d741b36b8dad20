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

from zdmigrate.ops import _requirements as req
from zdmigrate.ops._expressions import check_expression
from zdmigrate.ops._fix_rows import parse_fix
from zdmigrate.ops._names import QualifiedName, generated_name, render
from zdmigrate.ops._not_valid import NotValidConstraint
from zdmigrate.ops._triggers import SyncTrigger, fix_body
from zdmigrate.ops.base import Requirement


class AddCheck(NotValidConstraint):
    name = "add_check"
    kind = "check"

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
        self.fix = parse_fix(fix, f"AddCheck {name}")

    def _trigger(self, migration_id: str) -> SyncTrigger | None:
        if not self.fix:
            return None
        return SyncTrigger(self.table, generated_name(migration_id, "check", self.constraint),
                           fix_body(self.expression, self.fix))

    def _add(self) -> str:
        return render(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({}) NOT VALID").format(
            self.table.ident, sql.Identifier(self.constraint), sql.SQL(self.expression)))

    def _violated(self) -> str:
        return f"({self.expression}) IS FALSE"

    def requirements(self) -> list[Requirement]:
        return [
            req.table_exists(self.table),
            req.constraint_absent(self.table, self.constraint),
            req.expression_compiles(self.table, self.expression, "check expression",
                                    cast_to="boolean"),
            *(req.column_exists(self.table, c) for c in self.fix),
            *(req.expression_compiles(self.table, e, f"fix for {c!r}") for c, e in self.fix.items()),
        ]

    def describe(self) -> str:
        return f"add check {self.constraint} on {self.table}"
