"""Shared shape of the DROP rules: which object types a rule covers, and their names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Finding, Rule


def dropped_names(node: n.Node) -> list[str]:
    """The dotted names of the objects in a DropStmt (tables, types, schemas ...)."""
    out = []
    for obj in node.get("objects") or ():
        if "List" in obj:
            out.append(".".join(n.strings(obj["List"].get("items"))))
        elif "String" in obj:
            out.append(obj["String"].get("sval", ""))
        elif "TypeName" in obj:
            out.append(".".join(n.strings(obj["TypeName"].get("names"))))
    return out


class DropRule(Rule):
    """A destructive DROP of some object types (`remove_types`, as pglast names them)."""

    category = Category.DESTRUCTIVE
    targets = ("DropStmt",)
    noun: ClassVar[str] = ""

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        node = stmt.node
        if node.get("removeType") not in self.remove_types:
            return
        for name in dropped_names(node):
            yield Finding(f"DROP {self.noun} {name} outside contract", table=self.table_of(name, state))

    def table_of(self, name: str, state: LintState) -> str | None:
        return None
