"""SetDefault: a column gets a new default from expand on.

    ops.SetDefault("orders", "status", "'new'")

expand saves the current default (in a memo function) and sets the new one, an
instant catalog change; rows inserted by any app version without the column get
it. Rolling back expand restores the saved default exactly; contract drops the memo.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _claims, _memo
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._claims import Claim
from zdmigrate.ops._names import QualifiedName, do_block, generated_name, render
from zdmigrate.ops._values import DefaultSpec, render_default
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step


class SetDefault(Operation):
    name = "set_default"
    keeps_table_shape = True

    def __init__(
        self, table: str, column: str, default: DefaultSpec, *, schema: str | None = None
    ) -> None:
        self.table = QualifiedName.parse(table, schema)
        self.column = column
        value = render_default(default)
        if value is None:
            raise OperationInvalid("SetDefault needs a default; use DropDefault to remove one")
        self.default = value

    def _memo(self, migration_id: str) -> QualifiedName:
        return self.table.sibling(generated_name(migration_id, "default", self.column, "memo"))

    def _alter(self) -> sql.Composed:
        return sql.SQL("ALTER TABLE {} ALTER COLUMN {}").format(
            self.table.ident, sql.Identifier(self.column))

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.EXPAND:
            current = (
                "SELECT pg_get_expr(ad.adbin, ad.adrelid) FROM pg_catalog.pg_attrdef ad "
                "JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum "
                f"WHERE ad.adrelid = {self.table.regclass} "
                f"AND a.attname = {render(sql.Literal(self.column))}"
            )
            return [
                _memo.save_step(self._memo(migration_id), f"jsonb_build_object('default', ({current}))"),
                SQLStep(render(sql.SQL("{} SET DEFAULT {}").format(
                    self._alter(), sql.SQL(self.default)))),
            ]
        if phase is Phase.CONTRACT:
            return [_memo.drop_step(self._memo(migration_id))]
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.EXPAND:
            return []
        memo = self._memo(migration_id)
        set_prefix = render(sql.Literal(render(self._alter()) + " SET DEFAULT "))
        restore = SQLStep(
            do_block(
                f"\nDECLARE\n  saved text := {_memo.read(memo, 'default')};\nBEGIN\n"
                f"  IF saved IS NULL THEN\n    {render(self._alter())} DROP DEFAULT;\n"
                f"  ELSE\n    EXECUTE {set_prefix} || saved;\n  END IF;\nEND\n"),
            description=f"restore the default of {self.table}.{self.column}",
        )
        return [restore, _memo.drop_step(memo)]

    def requirements(self) -> list[Requirement]:
        return [
            req.table_exists(self.table),
            req.column_exists(self.table, self.column),
            req.expression_compiles(self.table, self.default, "default"),
        ]

    def claims(self, migration_id: str) -> list[Claim]:
        return [_claims.memo(self._memo(migration_id), f"the default of {self.column}")]

    def describe(self) -> str:
        return f"set default of {self.table}.{self.column}"
