"""AddPrimaryKey: a primary key, built as a unique index CONCURRENTLY, attached at contract.

    ops.AddPrimaryKey("events", ["tenant_id", "event_id"])

Like AddUnique; at contract each key column is first made NOT NULL through a
validated CHECK, so ``ADD CONSTRAINT ... PRIMARY KEY USING INDEX`` needs no
scan under ACCESS EXCLUSIVE. Existing NULLs and duplicates are reported before
expand; from expand on, writes must keep the key unique.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from zdmigrate.ops import _claims
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._claims import Claim
from zdmigrate.ops._names import generated_name, render
from zdmigrate.ops._not_null import set_not_null_steps
from zdmigrate.ops.add_unique import AddUnique
from zdmigrate.ops.base import Requirement
from zdmigrate.steps import Step


class AddPrimaryKey(AddUnique):
    name = "add_primary_key"
    kind = "PRIMARY KEY"

    def __init__(
        self, table: str, columns: Sequence[str] | str, *, name: str | None = None,
        schema: str | None = None,
    ) -> None:
        super().__init__(table, columns, name=name, schema=schema)

    def default_name(self) -> str:
        return f"{self.table.name}_pkey"

    def contract_steps(self, migration_id: str) -> list[Step]:
        out: list[Step] = []
        for column in self.columns:
            out += set_not_null_steps(self.table, column, generated_name(migration_id, column, "nn"))
        return out + super().contract_steps(migration_id)

    def requirements(self) -> list[Requirement]:
        no_pk = Requirement(
            render(sql.SQL(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint "
                "WHERE conrelid = {}::regclass AND contype = 'p')"
            ).format(sql.Literal(render(self.table.ident)))),
            f"table {self.table} already has a primary key",
        )
        any_null = " OR ".join(render(sql.SQL("{} IS NULL").format(sql.Identifier(c)))
                               for c in self.columns)
        return [
            *super().requirements(),
            no_pk,
            req.rows_satisfy(self.table, any_null,
                             f"table {self.table} has rows with NULL in ({', '.join(self.columns)})"),
        ]

    def claims(self, migration_id: str) -> list[Claim]:
        return [*super().claims(migration_id), *(
            _claims.not_null_check(self.table, generated_name(migration_id, c, "nn"), c, migration_id)
            for c in self.columns)]

    def describe(self) -> str:
        return f"add primary key {self.constraint} on {self.table}"
