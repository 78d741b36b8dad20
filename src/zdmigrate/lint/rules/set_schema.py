"""set-schema: ALTER ... SET SCHEMA moves an object away from the name old versions use."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule
from zdmigrate.phases import Phase


class SetSchema(Rule):
    id = "set-schema"
    category = Category.DESTRUCTIVE
    summary = "ALTER ... SET SCHEMA outside the contract phase"
    why = (
        "Moving an object to another schema is a rename: the running app version looks "
        "it up by its old qualified name (or through search_path) and fails."
    )
    fix = (
        "create the object in the new schema in expand, sync and backfill, switch the "
        "app over, and drop the old one in contract."
    )
    targets = ("AlterObjectSchemaStmt",)
    bad = (Example("ALTER TABLE orders SET SCHEMA sales;"),)
    good = (Example("ALTER TABLE orders SET SCHEMA sales;", phase=Phase.CONTRACT),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        node = stmt.node
        kind = node.get("objectType", "OBJECT_TABLE").removeprefix("OBJECT_").replace("_", " ")
        rel = node.get("relation")
        name = n.qualified(rel) if rel else _object_name(node.get("object"))
        yield Finding(
            f"{kind} {name} SET SCHEMA {node.get('newschema')} outside contract",
            table=n.relname(rel),
        )


def _object_name(obj: n.Node | None) -> str:
    if not obj:
        return "?"
    if "List" in obj:
        return ".".join(n.strings(obj["List"].get("items")))
    if "TypeName" in obj:
        return ".".join(n.strings(obj["TypeName"].get("names")))
    if "String" in obj:
        return str(obj["String"].get("sval", "?"))
    if "ObjectWithArgs" in obj:
        return ".".join(n.strings(obj["ObjectWithArgs"].get("objname")))
    return "?"
