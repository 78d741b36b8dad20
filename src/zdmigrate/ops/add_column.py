"""AddColumn: a new column, filled for existing rows and for writers that do not know it.

    ops.AddColumn("users", "email_lower", "text", nullable=False, up="lower(email)",
                  comment="lower(email), for lookups")

expand adds the column (nullable; with `up`, a sync trigger fills it for rows
written by app versions that do not know it); backfill fills existing rows from
`up`; contract sets the default and enforces NOT NULL through a validated CHECK,
so no step holds ACCESS EXCLUSIVE for longer than an instant.

Surprise: with `up`, the default is set only at contract; until then a row
inserted without the column gets `up` computed from the row. Without `up`, the
default is part of ADD COLUMN, which PostgreSQL applies without a table rewrite
only for a non-volatile default (``now()`` is fine, ``random()`` rewrites).
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _claims
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._claims import Claim
from zdmigrate.ops._expressions import check_expression
from zdmigrate.ops._names import QualifiedName, generated_name, render
from zdmigrate.ops._not_null import set_not_null_steps
from zdmigrate.ops._triggers import SyncTrigger, derived_body
from zdmigrate.ops._types import TypeSpec, render_type
from zdmigrate.ops._values import DefaultSpec, render_default
from zdmigrate.ops.base import Operation, Requirement, Shape
from zdmigrate.ops.set_comment import comment_sql
from zdmigrate.phases import Phase
from zdmigrate.steps import BackfillStep, SQLStep, Step


class AddColumn(Operation):
    name = "add_column"

    def __init__(
        self,
        table: str,
        column: str,
        type: TypeSpec,
        *,
        nullable: bool = True,
        default: DefaultSpec = None,
        up: str | None = None,
        comment: str | None = None,
        schema: str | None = None,
    ) -> None:
        self.table = QualifiedName.parse(table, schema)
        self.column = column
        self.type = render_type(type)
        self.nullable = nullable
        self.default = render_default(default)
        self.up = check_expression(up, "up") if up is not None else None
        if comment is not None and not isinstance(comment, str):
            raise OperationInvalid(
                f"AddColumn {self.table}.{column}: comment must be text, got {comment!r}")
        self.comment = comment
        if not nullable and self.up is None and self.default is None:
            raise OperationInvalid(
                f"AddColumn {self.table}.{column}: nullable=False needs `up` or `default` "
                "to fill existing rows and rows written by old app versions"
            )

    def _trigger(self, migration_id: str) -> SyncTrigger | None:
        if self.up is None:
            return None
        return SyncTrigger(
            self.table, generated_name(migration_id, "add", self.column),
            derived_body(self.column, self.up),
        )

    def _needs_fill(self) -> str:
        assert self.up is not None
        return render(sql.SQL("{} IS NULL AND ({}) IS NOT NULL").format(
            sql.Identifier(self.column), sql.SQL(self.up)))

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        t, c = self.table.ident, sql.Identifier(self.column)
        trigger = self._trigger(migration_id)
        out: list[Step] = []
        if phase is Phase.EXPAND:
            default = (
                sql.SQL(" DEFAULT {}").format(sql.SQL(self.default))
                if self.default is not None and self.up is None else sql.SQL("")
            )
            out.append(SQLStep(render(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}{}").format(
                t, c, sql.SQL(self.type), default))))
            if self.comment is not None:
                out.append(SQLStep(comment_sql(self.table, self.column, self.comment)))
            if trigger:
                out += trigger.create_steps()
        elif phase is Phase.BACKFILL and self.up is not None:
            out.append(BackfillStep(
                self.table.name, {self.column: self.up}, where=self._needs_fill(),
                verify=self._needs_fill(), schema=self.table.schema,
            ))
        elif phase is Phase.CONTRACT:
            if self.up is not None and self.default is not None:
                out.append(SQLStep(render(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}")
                                          .format(t, c, sql.SQL(self.default)))))
            if not self.nullable:
                # old versions never write the column: with a default they cannot leave it NULL
                out += set_not_null_steps(
                    self.table, self.column, generated_name(migration_id, self.column, "nn"),
                    old_versions_unaffected=self.default is not None)
            if trigger:
                out += trigger.drop_steps()
        return out

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.EXPAND:
            return []
        trigger = self._trigger(migration_id)
        out: list[Step] = list(trigger.drop_steps()) if trigger else []
        out.append(SQLStep(render(sql.SQL("ALTER TABLE {} DROP COLUMN IF EXISTS {}").format(
            self.table.ident, sql.Identifier(self.column)))))
        return out

    def requirements(self) -> list[Requirement]:
        out = [req.table_exists(self.table), req.column_absent(self.table, self.column)]
        if self.up is not None:
            out.append(req.expression_compiles(self.table, self.up, "up", cast_to=self.type))
        if self.default is not None:
            out.append(req.expression_compiles(self.table, self.default, "default",
                                               cast_to=self.type))
        return out

    def claims(self, migration_id: str) -> list[Claim]:
        trigger = self._trigger(migration_id)
        out = _claims.sync_trigger(self.table, trigger.name) if trigger else []
        if not self.nullable:
            out.append(_claims.not_null_check(
                self.table, generated_name(migration_id, self.column, "nn"), self.column,
                migration_id))
        return out

    def new_shape(self) -> list[Shape]:
        return [Shape(self.table, adds=(self.column,))]

    def describe(self) -> str:
        return f"add column {self.table}.{self.column} {self.type}"
