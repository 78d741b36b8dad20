"""CreateTable: a new table from SQLAlchemy columns, created at expand.

    ops.CreateTable("carts", sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("user_id", sa.BigInteger, nullable=False))

The DDL is compiled by SQLAlchemy for PostgreSQL (so it quotes every name).
Indexes declared on the columns (``index=True``) are created with the table: it
is new and empty, so a plain CREATE INDEX takes no lock anyone waits on.
Rolling back expand drops the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex as SACreateIndex
from sqlalchemy.schema import CreateTable as SACreateTable

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._names import QualifiedName, render
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step


class CreateTable(Operation):
    name = "create_table"

    def __init__(
        self,
        name: str,
        *columns: sa.Column[Any],
        constraints: Sequence[sa.Constraint] = (),
        schema: str | None = None,
    ) -> None:
        self.table = QualifiedName.parse(name, schema)
        if not columns or not all(isinstance(c, sa.Column) for c in columns):
            raise OperationInvalid(
                f"CreateTable {self.table}: give the columns as sqlalchemy.Column objects")
        self._sa_table = sa.Table(
            self.table.name, sa.MetaData(), *columns, *constraints, schema=self.table.schema)

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.EXPAND:
            return []
        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        out: list[Step] = [SQLStep(str(SACreateTable(self._sa_table).compile(dialect=dialect)).strip())]
        for index in sorted(self._sa_table.indexes, key=lambda i: str(i.name)):
            out.append(SQLStep(str(SACreateIndex(index).compile(dialect=dialect)).strip()))
        return out

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.EXPAND:
            return []
        return [SQLStep(render(sql.SQL("DROP TABLE IF EXISTS {}").format(self.table.ident)))]

    def requirements(self) -> list[Requirement]:
        return [req.relation_absent(self.table)]

    def describe(self) -> str:
        return f"create table {self.table}"
