"""Shared iteration for rules about ALTER TABLE ... ADD COLUMN."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n


def added_columns(node: n.Node) -> Iterator[n.Node]:
    """The ColumnDef of each ADD COLUMN in an AlterTableStmt."""
    for cmd in n.alter_cmds(node):
        if cmd.get("subtype") == "AT_AddColumn":
            col = n.coldef(cmd)
            if col is not None:
                yield col
