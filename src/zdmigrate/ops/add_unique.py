"""AddUnique: a unique constraint, built as a unique index CONCURRENTLY, attached at contract.

    ops.AddUnique("users", ["email"])

expand builds the unique index concurrently (it enforces uniqueness from then
on, for every app version); contract turns it into a constraint with ``ADD
CONSTRAINT ... UNIQUE USING INDEX``, an instant. Existing duplicates are
reported before expand.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from zdmigrate.ops import _requirements as req
from zdmigrate.ops._names import QualifiedName, columns_list, render
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.ops.create_index import create_index_sql, drop_index_step
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step


def no_duplicates(table: QualifiedName, columns: list[str]) -> Requirement:
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    not_null = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(c))
                                     for c in columns)
    query = sql.SQL(
        "SELECT NOT EXISTS (SELECT 1 FROM {} WHERE {} GROUP BY {} HAVING count(*) > 1)"
    ).format(table.ident, not_null, cols)
    return Requirement(render(query), f"table {table} has duplicate values in ({', '.join(columns)})")


class AddUnique(Operation):
    name = "add_unique"
    kind = "UNIQUE"

    def __init__(
        self, table: str, columns: Sequence[str] | str, *, name: str | None = None,
        schema: str | None = None,
    ) -> None:
        self.table = QualifiedName.parse(table, schema)
        self.columns = columns_list(columns)
        self.constraint = name or self.default_name()

    def default_name(self) -> str:
        return f"{self.table.name}_{'_'.join(self.columns)}_key"

    def contract_steps(self, migration_id: str) -> list[Step]:
        return [SQLStep(render(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} USING INDEX {}").format(
            self.table.ident, sql.Identifier(self.constraint), sql.SQL(self.kind),
            sql.Identifier(self.constraint))))]

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.EXPAND:
            return [SQLStep(create_index_sql(self.constraint, self.table, self.columns, unique=True),
                            autocommit=True)]
        if phase is Phase.CONTRACT:
            return self.contract_steps(migration_id)
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.EXPAND:
            return [drop_index_step(self.table.sibling(self.constraint))]
        return []

    def requirements(self) -> list[Requirement]:
        return [
            req.table_exists(self.table),
            *(req.column_exists(self.table, c) for c in self.columns),
            req.index_name_free(self.table.sibling(self.constraint)),
            req.constraint_absent(self.table, self.constraint),
            no_duplicates(self.table, self.columns),
        ]

    def describe(self) -> str:
        return f"add unique {self.constraint} on {self.table}"
