"""add-column-serial: ADD COLUMN of a serial type rewrites the table to fill in nextval()."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._add_column import added_columns
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


class AddColumnSerial(Rule):
    id = "add-column-serial"
    category = Category.LOCK
    summary = "ADD COLUMN of type serial, bigserial or smallserial"
    why = (
        "A serial column's default is nextval(), which is volatile: PostgreSQL rewrites "
        "every row under an ACCESS EXCLUSIVE lock to give each one a value."
    )
    fix = (
        "add a plain bigint column, create the sequence and SET DEFAULT nextval(...) "
        "separately, then backfill existing rows in batches."
    )
    targets = ("AlterTableStmt",)
    alter_subtypes = frozenset({"AT_AddColumn"})
    bad = (Example("ALTER TABLE events ADD COLUMN seq bigserial;"),)
    good = (
        Example("ALTER TABLE events ADD COLUMN seq bigint;\n"
                "CREATE SEQUENCE events_seq_seq;\n"
                "ALTER TABLE events ALTER COLUMN seq SET DEFAULT nextval('events_seq_seq');"),
    )

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        rel = stmt.node.get("relation")
        for col in added_columns(stmt.node):
            info = n.type_info(col.get("typeName"))
            if info is not None and info.name in n.SERIAL_TYPES:
                yield Finding(f"ADD COLUMN {n.qualified(rel)}.{col.get('colname')} {info.name}",
                              table=n.relname(rel))
