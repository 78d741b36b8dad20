"""rename-object: renaming a sequence, type, domain, function, schema or constraint before contract.

Tables and views are `rename-table`, columns `rename-column`, enum labels
`rename-enum-value`. Index and trigger renames are left alone: no query names
an index or a trigger, so the running app version cannot notice.
"""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule
from zdmigrate.phases import Phase

_KINDS = {
    "OBJECT_SEQUENCE": "SEQUENCE",
    "OBJECT_TYPE": "TYPE",
    "OBJECT_DOMAIN": "DOMAIN",
    "OBJECT_FUNCTION": "FUNCTION",
    "OBJECT_PROCEDURE": "PROCEDURE",
    "OBJECT_ROUTINE": "ROUTINE",
    "OBJECT_AGGREGATE": "AGGREGATE",
    "OBJECT_SCHEMA": "SCHEMA",
    "OBJECT_TABCONSTRAINT": "CONSTRAINT",
    "OBJECT_DOMCONSTRAINT": "CONSTRAINT",
}


def _name(node: n.Node) -> str:
    if node.get("renameType") in ("OBJECT_TABCONSTRAINT", "OBJECT_DOMCONSTRAINT"):
        owner = n.qualified(node["relation"]) if node.get("relation") else _object_name(node)
        return f"{node.get('subname', '?')} on {owner}"
    if node.get("renameType") == "OBJECT_SCHEMA":
        return str(node.get("subname", "?"))
    if node.get("relation"):
        return n.qualified(node["relation"])
    return _object_name(node)


def _object_name(node: n.Node) -> str:
    obj = node.get("object") or {}
    if "ObjectWithArgs" in obj:
        return ".".join(n.strings(obj["ObjectWithArgs"].get("objname")))
    if "List" in obj:
        return ".".join(n.strings(obj["List"].get("items")))
    if "TypeName" in obj:
        return ".".join(n.strings(obj["TypeName"].get("names")))
    return "?"


class RenameObject(Rule):
    id = "rename-object"
    category = Category.DESTRUCTIVE
    summary = "RENAME of a sequence, type, domain, function, schema or constraint outside contract"
    why = (
        "The running app version still uses the old name: nextval('old_seq'), casts to the "
        "type, calls of the function, schema-qualified names, ON CONFLICT ON CONSTRAINT and "
        "error handling by constraint name fail or stop matching at once."
    )
    fix = (
        "create the object under the new name in expand (or keep the old one), switch the "
        "app, and rename or drop the old one in the contract phase."
    )
    targets = ("RenameStmt",)
    bad = (Example("ALTER SEQUENCE order_no RENAME TO order_number;"),
           Example("ALTER FUNCTION order_total(bigint) RENAME TO order_sum;"))
    good = (Example("ALTER SEQUENCE order_no RENAME TO order_number;", phase=Phase.CONTRACT),
            Example("ALTER INDEX orders_user_idx RENAME TO orders_user_id_idx;"))

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        node = stmt.node
        kind = _KINDS.get(node.get("renameType", ""))
        if kind:
            yield Finding(f"RENAME {kind} {_name(node)} TO {node.get('newname')} outside contract",
                          table=n.relname(node.get("relation")) if kind == "CONSTRAINT" else None)
