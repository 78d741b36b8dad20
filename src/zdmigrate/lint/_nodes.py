"""Helpers to read pglast's JSON parse tree: names, types, constraints, expressions.

Every node is ``{"NodeType": {fields}}``; absent fields hold their default.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

Node = dict[str, Any]

# the spelling PostgreSQL's parser produces (pg_catalog.int4) and the ones authors type
_TYPE_ALIASES = {
    "int": "int4",
    "integer": "int4",
    "int4": "int4",
    "bigint": "int8",
    "int8": "int8",
    "smallint": "int2",
    "int2": "int2",
    "serial": "serial4",
    "serial4": "serial4",
    "bigserial": "serial8",
    "serial8": "serial8",
    "smallserial": "serial2",
    "serial2": "serial2",
    "character varying": "varchar",
    "varchar": "varchar",
    "character": "bpchar",
    "char": "bpchar",
    "bpchar": "bpchar",
    "nchar": "bpchar",
    "decimal": "numeric",
    "numeric": "numeric",
    "timestamp": "timestamp",
    "timestamp without time zone": "timestamp",
    "timestamptz": "timestamptz",
    "timestamp with time zone": "timestamptz",
    "varbit": "varbit",
    "bit varying": "varbit",
}
SERIAL_TYPES = frozenset({"serial2", "serial4", "serial8"})


class TypeInfo(NamedTuple):
    """A column type as written: canonical name, type modifiers, array or not.

    A NamedTuple (immutable, built fast: one per column a migration writes).
    """

    name: str
    mods: tuple[int | None, ...] = ()
    array: bool = False
    qualified: bool = False  # written with pg_catalog. (or produced so by the parser)

    def __str__(self) -> str:
        mods = f"({', '.join(str(m) for m in self.mods)})" if self.mods else ""
        return f"{self.name}{mods}{'[]' if self.array else ''}"


def strings(items: list[Node] | None) -> list[str]:
    """The `sval`s of a list of String nodes (names, qualified names)."""
    out = []
    for item in items or ():
        s = item.get("String")
        if s is not None:
            out.append(s.get("sval", ""))
    return out


def type_info(type_name: Node | None) -> TypeInfo | None:
    if not type_name:
        return None
    names = strings(type_name.get("names"))
    if not names:
        return None
    qualified = len(names) > 1 and names[0] == "pg_catalog"
    raw = names[-1]
    # the parser turns `char` into pg_catalog.bpchar, so a raw "char" can only be
    # the quoted one-byte internal type, not character(n)
    name = raw if raw == "char" else _TYPE_ALIASES.get(raw.lower(), raw.lower())
    mods: list[int | None] = []
    for mod in type_name.get("typmods") or ():
        const = mod.get("A_Const")
        if const is not None and "ival" in const:
            mods.append(const["ival"].get("ival", 0))
        else:
            mods.append(None)
    return TypeInfo(name, tuple(mods), bool(type_name.get("arrayBounds")), qualified)


def relname(rangevar: Node | None) -> str | None:
    if not rangevar:
        return None
    return rangevar.get("relname")


def qualified(rangevar: Node | None) -> str:
    if not rangevar:
        return "?"
    name = rangevar.get("relname", "?")
    schema = rangevar.get("schemaname")
    return f"{schema}.{name}" if schema else name


def column_constraints(coldef: Node) -> Iterator[Node]:
    for item in coldef.get("constraints") or ():
        c = item.get("Constraint")
        if c is not None:
            yield c


def alter_cmds(node: Node) -> Iterator[Node]:
    """The AlterTableCmd nodes of an AlterTableStmt."""
    for item in node.get("cmds") or ():
        cmd = item.get("AlterTableCmd")
        if cmd is not None:
            yield cmd


def is_table_alter(node: Node) -> bool:
    return node.get("objtype", "OBJECT_TABLE") in ("OBJECT_TABLE", "OBJECT_FOREIGN_TABLE")


def coldef(cmd: Node) -> Node | None:
    d = cmd.get("def")
    return d.get("ColumnDef") if d else None


def constraint(cmd: Node) -> Node | None:
    d = cmd.get("def")
    return d.get("Constraint") if d else None


def func_name(call: Node) -> str:
    names = strings(call.get("funcname"))
    return names[-1].lower() if names else ""


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a parse tree, depth first."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            for key, value in cur.items():
                yield key, value
                if isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(cur, list):
            stack.extend(cur)


def defelem_true(params: list[Node] | None, name: str) -> bool:
    """True when a DefElem option list such as REINDEX (CONCURRENTLY) turns `name` on."""
    for item in params or ():
        d = item.get("DefElem")
        if d is None or d.get("defname") != name:
            continue
        arg = d.get("arg")
        if arg is None:
            return True
        return _truthy(arg)
    return False


def _truthy(arg: Node) -> bool:
    if "Boolean" in arg:
        return bool(arg["Boolean"].get("boolval", False))
    if "String" in arg:
        return arg["String"].get("sval", "").lower() in ("true", "on", "1", "yes")
    if "Integer" in arg:
        return bool(arg["Integer"].get("ival", 0))
    if "A_Const" in arg:
        return _truthy({k: v for k, v in arg["A_Const"].items() if k != "location"})
    return True


def written_column_types(kind: str, node: Node) -> Iterator[tuple[str, str, TypeInfo]]:
    """(table, column, type) for every column type a statement writes.

    CREATE TABLE columns, ALTER TABLE ... ADD COLUMN and ALTER COLUMN ... TYPE.
    """
    if kind == "CreateStmt":
        table = qualified(node.get("relation"))
        for elt in node.get("tableElts") or ():
            col = elt.get("ColumnDef")
            if col is not None:
                info = type_info(col.get("typeName"))
                if info is not None:
                    yield table, col.get("colname", "?"), info
    elif kind == "AlterTableStmt":
        table = qualified(node.get("relation"))
        for cmd in alter_cmds(node):
            sub = cmd.get("subtype")
            if sub in ("AT_AddColumn", "AT_AlterColumnType"):
                col = coldef(cmd)
                info = type_info(col.get("typeName")) if col else None
                if info is not None and col is not None:
                    name = col.get("colname") or cmd.get("name") or "?"
                    yield table, name, info
