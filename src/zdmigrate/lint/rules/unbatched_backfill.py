"""unbatched-backfill: an UPDATE or DELETE of a whole table in one statement.

Warning: one statement over every row holds row locks on all of them until it
commits, blocking the app's writes to any of those rows, and bloats the table
and WAL in one go (replicas fall behind).
"""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule


def _always_true(where: n.Node | None) -> bool:
    if where is None:
        return True
    const = where.get("A_Const") or {}
    return bool((const.get("boolval") or {}).get("boolval"))


class UnbatchedBackfill(Rule):
    id = "unbatched-backfill"
    category = Category.LOCK
    summary = "UPDATE or DELETE over a whole table (no WHERE) in a migration"
    why = (
        "One statement over every row locks all of them until it commits (the app's "
        "writes to them wait) and produces the table's size in WAL at once, so replicas lag."
    )
    fix = (
        "use ctx.backfill(table, set=..., where=...): zdmigrate runs it in short batches "
        "by primary key, throttled and resumable."
    )
    targets = ("UpdateStmt", "DeleteStmt")
    bad = (Example("UPDATE users SET email_lower = lower(email);"),)
    good = (Example("UPDATE users SET email_lower = lower(email) WHERE id = 42;"),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        node = stmt.node
        if not _always_true(node.get("whereClause")):
            return
        rel = node.get("relation")
        verb = "UPDATE" if stmt.kind == "UpdateStmt" else "DELETE FROM"
        yield Finding(f"{verb} {n.qualified(rel)} without a WHERE clause", table=n.relname(rel))
