"""Shared base of the hygiene rules about column types in CREATE TABLE, ADD COLUMN, ALTER TYPE."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Finding, Rule


class ColumnTypeRule(Rule):
    category = Category.HYGIENE
    targets = ("CreateStmt", "AlterTableStmt")
    alter_subtypes = frozenset({"AT_AddColumn", "AT_AlterColumnType"})
    exempt_new_tables = False
    #: what to call the offending type in the message
    advice: ClassVar[str] = ""

    def bad_type(self, info: n.TypeInfo) -> bool:
        raise NotImplementedError

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        for table, column, info in n.written_column_types(stmt.kind, stmt.node):
            if self.bad_type(info):
                yield Finding(f"column {table}.{column} is {info}; {self.advice}")
