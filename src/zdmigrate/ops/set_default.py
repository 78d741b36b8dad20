"""SetDefault: a column gets a new default from expand on.

    ops.SetDefault("orders", "status", "'new'")

expand saves the current default (in a memo function) and sets the new one, an
instant catalog change; rows inserted by any app version without the column get
it. Rolling back expand restores the saved default exactly; contract drops the memo.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _memo
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._memo import MemoOperation
from zdmigrate.ops._names import QualifiedName, do_block, generated_name, render
from zdmigrate.ops._values import DefaultSpec, render_default
from zdmigrate.ops.base import Requirement
from zdmigrate.steps import SQLStep


class SetDefault(MemoOperation):
    name = "set_default"

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

    def _facts(self) -> str:
        current = (
            "SELECT pg_get_expr(ad.adbin, ad.adrelid) FROM pg_catalog.pg_attrdef ad "
            "JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum "
            f"WHERE ad.adrelid = {self.table.regclass} "
            f"AND a.attname = {render(sql.Literal(self.column))}"
        )
        return f"jsonb_build_object('default', ({current}))"

    def _change(self) -> SQLStep:
        return SQLStep(render(sql.SQL("{} SET DEFAULT {}").format(self._alter(), sql.SQL(self.default))))

    def _restore(self, memo: QualifiedName) -> SQLStep:
        set_prefix = render(sql.Literal(render(self._alter()) + " SET DEFAULT "))
        return SQLStep(
            do_block(
                f"\nDECLARE\n  saved text := {_memo.read(memo, 'default')};\nBEGIN\n"
                f"  IF saved IS NULL THEN\n    {render(self._alter())} DROP DEFAULT;\n"
                f"  ELSE\n    EXECUTE {set_prefix} || saved;\n  END IF;\nEND\n"),
            description=f"restore the default of {self.table}.{self.column}",
        )

    def requirements(self) -> list[Requirement]:
        return [
            req.table_exists(self.table),
            req.column_exists(self.table, self.column),
            req.expression_compiles(self.table, self.default, "default"),
        ]

    def _remembered(self) -> str:
        return f"the default of {self.column}"

    def describe(self) -> str:
        return f"set default of {self.table}.{self.column}"
