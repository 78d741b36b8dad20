"""Shared iteration for rules about ALTER TABLE ... ADD COLUMN and ADD CONSTRAINT."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from zdmigrate.lint import _nodes as n


def added_columns(node: n.Node) -> Iterator[n.Node]:
    """The ColumnDef of each ADD COLUMN in an AlterTableStmt."""
    for cmd in n.alter_cmds(node):
        if cmd.get("subtype") == "AT_AddColumn":
            col = n.coldef(cmd)
            if col is not None:
                yield col


def added_constraints(
    node: n.Node, kinds: Mapping[str, str]
) -> Iterator[tuple[str, n.Node, n.Node | None]]:
    """Each constraint of one of `kinds` (contype -> its name in words) that an
    AlterTableStmt adds, in statement order: its kind in words, the Constraint,
    and the ColumnDef it is written inline in (None for ``ADD CONSTRAINT``)."""
    for cmd in n.alter_cmds(node):
        sub = cmd.get("subtype")
        if sub == "AT_AddConstraint":
            cons: Iterable[n.Node] = [n.constraint(cmd) or {}]
            col = None
        elif sub == "AT_AddColumn":
            col = n.coldef(cmd)
            cons = n.column_constraints(col or {})
        else:
            continue
        for con in cons:
            kind = kinds.get(con.get("contype", ""))
            if kind:
                yield kind, con, col
