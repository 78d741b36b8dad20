"""SetComment: a new comment on a table or a column, or none.

    ops.SetComment("users", "Who can log in")
    ops.SetComment("users", "Lower-cased, for lookups", column="email_lower")
    ops.SetComment("users", None, column="legacy")      # removes the comment

A comment is metadata no app version depends on, so it is set at expand (an
instant catalog change under a brief lock). The comment it replaces is saved
in a memo function, so rolling back expand restores it exactly; contract drops
the memo.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _memo
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._memo import MemoOperation
from zdmigrate.ops._names import QualifiedName, do_block, generated_name, render
from zdmigrate.ops.base import Requirement
from zdmigrate.steps import SQLStep


def comment_sql(table: QualifiedName, column: str | None, comment: str | None) -> str:
    """``COMMENT ON TABLE|COLUMN ... IS '...'`` (or ``IS NULL``)."""
    return render(sql.SQL("{} IS {}").format(_target(table, column), sql.Literal(comment)))


def _target(table: QualifiedName, column: str | None) -> sql.Composed:
    if column is None:
        return sql.SQL("COMMENT ON TABLE {}").format(table.ident)
    return sql.SQL("COMMENT ON COLUMN {}").format(sql.Identifier(table.schema, table.name, column))


class SetComment(MemoOperation):
    name = "set_comment"

    def __init__(
        self, table: str, comment: str | None, *, column: str | None = None,
        schema: str | None = None,
    ) -> None:
        self.table = QualifiedName.parse(table, schema)
        if comment is not None and not isinstance(comment, str):
            raise OperationInvalid(
                f"SetComment on {self.table}: comment must be text or None, got {comment!r}")
        if column is not None and (not isinstance(column, str) or not column):
            raise OperationInvalid(f"SetComment on {self.table}: column must be a name, got {column!r}")
        self.comment = comment
        self.column = column

    def _memo(self, migration_id: str) -> QualifiedName:
        return self.table.sibling(
            generated_name(migration_id, "comment", self.column or self.table.name, "memo"))

    def _current(self) -> str:
        regclass = render(sql.Literal(render(self.table.ident)))
        if self.column is None:
            return f"obj_description({regclass}::regclass, 'pg_class')"
        return (f"(SELECT col_description(a.attrelid, a.attnum) FROM pg_catalog.pg_attribute a "
                f"WHERE a.attrelid = {regclass}::regclass "
                f"AND a.attname = {render(sql.Literal(self.column))})")

    def _facts(self) -> str:
        return f"jsonb_build_object('comment', {self._current()})"

    def _change(self) -> SQLStep:
        return SQLStep(comment_sql(self.table, self.column, self.comment))

    def _restore(self, memo: QualifiedName) -> SQLStep:
        prefix = render(sql.Literal(render(_target(self.table, self.column)) + " IS "))
        return SQLStep(
            do_block(f"\nBEGIN\n  EXECUTE {prefix} || "
            f"coalesce(quote_literal({_memo.read(memo, 'comment')}), 'NULL');\nEND\n"),
            description=f"restore the comment on {self.describe_target()}",
        )

    def requirements(self) -> list[Requirement]:
        out = [req.table_exists(self.table)]
        if self.column is not None:
            out.append(req.column_exists(self.table, self.column))
        return out

    def describe_target(self) -> str:
        return f"{self.table}.{self.column}" if self.column else f"table {self.table}"

    def _remembered(self) -> str:
        return f"the comment of {self.describe_target()}"

    def describe(self) -> str:
        return f"set comment on {self.describe_target()}"
