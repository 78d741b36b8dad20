"""CreateTable: a new table from SQLAlchemy columns, created at expand.

    ops.CreateTable("carts", sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("user_id", sa.BigInteger, nullable=False))

The DDL is compiled by SQLAlchemy for PostgreSQL (so it quotes every name).
Indexes declared on the columns (``index=True``) are created with the table: it
is new and empty, so a plain CREATE INDEX takes no lock anyone waits on.
Comments (``comment=`` on the table and on each ``sa.Column``) are set with
COMMENT ON in the same expand. Rolling back expand drops the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex as SACreateIndex
from sqlalchemy.schema import CreateTable as SACreateTable
from sqlalchemy.schema import SetColumnComment, SetTableComment

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._names import QualifiedName, render
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step


class CreateTable(Operation):
    name = "create_table"
    keeps_table_shape = True

    def __init__(
        self,
        name: str,
        *columns: sa.Column[Any],
        constraints: Sequence[sa.Constraint] = (),
        schema: str | None = None,
        comment: str | None = None,
    ) -> None:
        self.table = QualifiedName.parse(name, schema)
        if not columns or not all(isinstance(c, sa.Column) for c in columns):
            raise OperationInvalid(
                f"CreateTable {self.table}: give the columns as sqlalchemy.Column objects")
        # unqualified foreign-key targets ("orders.id") resolve in the new table's schema
        metadata = sa.MetaData(schema=self.table.schema)
        self._sa_table = sa.Table(
            self.table.name, metadata, *columns, *constraints, schema=self.table.schema,
            comment=comment)
        _stub_referenced_tables(metadata, self._sa_table, self.table.schema)

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.EXPAND:
            return []
        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        out: list[Step] = [SQLStep(str(SACreateTable(self._sa_table).compile(dialect=dialect)).strip())]
        for index in sorted(self._sa_table.indexes, key=lambda i: str(i.name)):
            out.append(SQLStep(str(SACreateIndex(index).compile(dialect=dialect)).strip()))
        if self._sa_table.comment is not None:
            out.append(SQLStep(str(SetTableComment(self._sa_table).compile(dialect=dialect))))
        for column in self._sa_table.columns:
            if column.comment is not None:
                out.append(SQLStep(str(SetColumnComment(column).compile(dialect=dialect))))
        return out

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.EXPAND:
            return []
        return [SQLStep(render(sql.SQL("DROP TABLE IF EXISTS {}").format(self.table.ident)))]

    def requirements(self) -> list[Requirement]:
        return [req.relation_absent(self.table)]

    def describe(self) -> str:
        return f"create table {self.table}"


def _stub_referenced_tables(metadata: sa.MetaData, table: sa.Table, schema: str) -> None:
    """Give each table a foreign key names a stand-in, so SQLAlchemy can compile REFERENCES.

    An unqualified target (``"orders.id"``) is taken to be in the new table's own
    schema, and rendered qualified, so the DDL never depends on search_path.
    """
    for fk in table.foreign_keys:
        spec = fk._get_colspec()
        if not isinstance(spec, str):
            continue
        parts = spec.split(".")
        if len(parts) not in (2, 3):
            raise OperationInvalid(f"CreateTable {table.name}: foreign key target {spec!r} "
                                   "is not 'table.column' or 'schema.table.column'")
        target_schema = parts[0] if len(parts) == 3 else schema
        name, column = parts[-2], parts[-1]
        key = f"{target_schema}.{name}"
        target = metadata.tables.get(key)
        if target is None:
            target = sa.Table(name, metadata, schema=target_schema)
        if column not in target.c:
            target.append_column(sa.Column(column, sa.Integer))
