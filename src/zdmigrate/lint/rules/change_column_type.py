"""change-column-type: ALTER COLUMN ... TYPE rewrites the table under ACCESS EXCLUSIVE.

Unless the change is known to be a binary-coercible widening (varchar(n) to a
larger varchar or to text, numeric(p,s) to a larger precision, cidr to inet),
PostgreSQL rewrites the table and its indexes while holding an ACCESS EXCLUSIVE
lock, and old app versions may not understand the new type. The old type is
known when the input wrote it (CREATE TABLE, ADD COLUMN, an earlier revision),
from Alembic's ``existing_type``, or from the live catalog when lint has a
database URL; otherwise the change is reported.
"""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


def is_safe_widening(old: n.TypeInfo, new: n.TypeInfo) -> bool:
    """True when old -> new needs neither a rewrite nor a scan, and loses nothing."""
    if old.array != new.array:
        return False
    if old.name == new.name and old.mods == new.mods:
        return True
    if old.name == "varchar" and new.name == "text":
        return True
    if old.name == "text" and new.name == "varchar" and not new.mods:
        return True
    if old.name == new.name and old.name in ("varchar", "varbit"):
        if not new.mods:
            return True
        return bool(old.mods) and _ge(new.mods[0], old.mods[0])
    if old.name == new.name == "numeric":
        if not new.mods:
            return True
        if not old.mods:
            return False
        old_scale = old.mods[1] if len(old.mods) > 1 else 0
        new_scale = new.mods[1] if len(new.mods) > 1 else 0
        return old_scale == new_scale and _ge(new.mods[0], old.mods[0])
    return old.name == "cidr" and new.name == "inet"


def _ge(a: int | None, b: int | None) -> bool:
    return a is not None and b is not None and a >= b


def _trivial_using(expr: n.Node | None, column: str) -> bool:
    """USING col or USING col::newtype does not change the contents."""
    if expr is None:
        return True
    if "TypeCast" in expr:
        expr = expr["TypeCast"].get("arg") or {}
    ref = expr.get("ColumnRef") or {}
    return n.strings(ref.get("fields"))[-1:] == [column]


class ChangeColumnType(Rule):
    id = "change-column-type"
    category = Category.LOCK
    summary = "ALTER COLUMN ... TYPE that is not a known binary-coercible widening"
    why = (
        "PostgreSQL rewrites the whole table and rebuilds its indexes under an ACCESS "
        "EXCLUSIVE lock, blocking every read and write for the duration; the running app "
        "version may also not handle the new type."
    )
    fix = (
        "add a column of the new type in expand, sync writes (dual-write or a trigger), "
        "backfill in batches, switch reads, drop the old column in contract "
        "(ops.ChangeColumnType). Widening varchar(n) to varchar(m>n) or text is safe."
    )
    targets = ("AlterTableStmt",)
    alter_subtypes = frozenset({"AT_AlterColumnType"})
    bad = (Example("ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2) USING total::numeric;"),)
    good = (
        Example(
            "ALTER TABLE notes ADD COLUMN body varchar(200);\n"
            "ALTER TABLE notes ALTER COLUMN body TYPE text;"
        ),
    )

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        rel = stmt.node.get("relation")
        table = (n.relname(rel) or "").lower()
        for cmd in n.alter_cmds(stmt.node):
            if cmd.get("subtype") != "AT_AlterColumnType":
                continue
            col = n.coldef(cmd) or {}
            column = cmd.get("name", "?")
            new = n.type_info(col.get("typeName"))
            old = state.old_type(table, column)
            if (
                new is not None and old is not None and is_safe_widening(old, new)
                and _trivial_using(col.get("raw_default"), column)
            ):
                continue
            was = f" from {old}" if old is not None else ""
            yield Finding(
                f"ALTER COLUMN {n.qualified(rel)}.{column} TYPE {new}{was} (a rewrite, or a type "
                "change whose old type zdmigrate cannot see)",
                table=n.relname(rel),
            )
