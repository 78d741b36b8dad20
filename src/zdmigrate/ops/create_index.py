"""CreateIndex: an index built with CREATE INDEX CONCURRENTLY at expand.

    ops.CreateIndex("orders_user_id_idx", "orders", ["user_id"], where="deleted_at IS NULL")

CONCURRENTLY builds without blocking writes, outside a transaction (the step is
autocommit). A build that fails leaves an INVALID index behind; the engine drops
it before retrying. Rolling back expand drops the index, also concurrently.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._expressions import check_expression
from zdmigrate.ops._names import QualifiedName, columns_list, render
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step

_METHODS = {"btree", "hash", "gist", "spgist", "gin", "brin"}


def create_index_sql(
    name: str, table: QualifiedName, columns: Sequence[str], *, unique: bool = False,
    where: str | None = None, method: str | None = None, include: Sequence[str] = (),
) -> str:
    parts = [sql.SQL("CREATE {}INDEX CONCURRENTLY {} ON {}").format(
        sql.SQL("UNIQUE " if unique else ""), sql.Identifier(name), table.ident)]
    if method:
        parts.append(sql.SQL("USING {}").format(sql.SQL(method)))
    parts.append(sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Identifier, columns))))
    if include:
        parts.append(sql.SQL("INCLUDE ({})").format(sql.SQL(", ").join(map(sql.Identifier, include))))
    if where:
        parts.append(sql.SQL("WHERE {}").format(sql.SQL(where)))
    return render(sql.SQL(" ").join(parts))


def drop_index_step(index: QualifiedName) -> SQLStep:
    return SQLStep(render(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(index.ident)),
                   autocommit=True)


class CreateIndex(Operation):
    name = "create_index"

    def __init__(
        self,
        name: str,
        table: str,
        columns: Sequence[str] | str,
        *,
        unique: bool = False,
        where: str | None = None,
        method: str | None = None,
        include: Sequence[str] | str = (),
        schema: str | None = None,
    ) -> None:
        self.table = QualifiedName.parse(table, schema)
        self.index = self.table.sibling(name)
        self.columns = columns_list(columns)
        self.unique = unique
        self.where = check_expression(where, "where") if where is not None else None
        if method is not None and method.lower() not in _METHODS:
            raise OperationInvalid(
                f"CreateIndex {name}: unknown method {method!r}; one of {', '.join(sorted(_METHODS))}")
        self.method = method.lower() if method else None
        self.include = columns_list(include) if include else []

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.EXPAND:
            return []
        return [SQLStep(create_index_sql(
            self.index.name, self.table, self.columns, unique=self.unique, where=self.where,
            method=self.method, include=self.include), autocommit=True)]

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        return [drop_index_step(self.index)] if phase is Phase.EXPAND else []

    def requirements(self) -> list[Requirement]:
        return [
            req.table_exists(self.table),
            req.index_name_free(self.index),
            *(req.column_exists(self.table, c) for c in [*self.columns, *self.include]),
        ]

    def describe(self) -> str:
        return f"create index {self.index} on {self.table}"
