"""lock-table: an explicit LOCK TABLE in a migration blocks the app until the transaction ends."""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule

_MODES = {
    1: "ACCESS SHARE", 2: "ROW SHARE", 3: "ROW EXCLUSIVE", 4: "SHARE UPDATE EXCLUSIVE",
    5: "SHARE", 6: "SHARE ROW EXCLUSIVE", 7: "EXCLUSIVE", 8: "ACCESS EXCLUSIVE",
}
#: SHARE and stronger conflict with the app's own writes (ROW EXCLUSIVE)
_BLOCKS_WRITES = 5


class LockTable(Rule):
    id = "lock-table"
    category = Category.LOCK
    summary = "LOCK TABLE in a mode that blocks the app's writes (SHARE or stronger)"
    why = (
        "The lock is held until the transaction ends and every write (ACCESS EXCLUSIVE: "
        "every read too) of the table queues behind it, and behind the LOCK while it waits."
    )
    fix = (
        "do not lock explicitly: let each DDL statement take its own lock for a short "
        "transaction with lock_timeout, as zdmigrate's executor does."
    )
    targets = ("LockStmt",)
    exempt_new_tables = False
    bad = (Example("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;"),)
    good = (Example("LOCK TABLE orders IN ROW EXCLUSIVE MODE;"),)

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        mode = int(stmt.node.get("mode", 8))
        if mode < _BLOCKS_WRITES:
            return
        names = [n.qualified(r.get("RangeVar")) for r in stmt.node.get("relations") or ()]
        yield Finding(f"LOCK TABLE {', '.join(names)} IN {_MODES.get(mode, str(mode))} MODE")
