"""drop-function: DROP FUNCTION/PROCEDURE before contract breaks the app version that calls it.

Functions named ``zdm_...`` are zdmigrate's own (the trigger functions of its
operations, see ops/_names.py): no app calls them, so dropping one is not reported.
"""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Example, Finding
from zdmigrate.lint.rules._drop import DropRule
from zdmigrate.phases import Phase

_NOUNS = {"OBJECT_FUNCTION": "FUNCTION", "OBJECT_PROCEDURE": "PROCEDURE",
          "OBJECT_ROUTINE": "ROUTINE", "OBJECT_AGGREGATE": "AGGREGATE"}


_OWN_PREFIX = "zdm_"  # zdmigrate's generated names (ops/_names.py)


class DropFunction(DropRule):
    id = "drop-function"
    summary = "DROP FUNCTION, PROCEDURE, ROUTINE or AGGREGATE outside the contract phase"
    why = (
        "The running app version (or a trigger, view or default it relies on) still calls "
        "the function; its calls fail with 'function does not exist'."
    )
    fix = (
        "create the replacement under a new name (or signature) in expand, switch callers, "
        "and drop the old function in the contract phase."
    )
    remove_types = tuple(_NOUNS)
    noun = "FUNCTION"
    bad = (Example("DROP FUNCTION order_total(bigint);"),)
    good = (Example("DROP FUNCTION order_total(bigint);", phase=Phase.CONTRACT),
            Example("DROP FUNCTION IF EXISTS zdm_0012_prices_check();"))

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        node = stmt.node
        noun = _NOUNS.get(node.get("removeType", ""))
        if noun is None:
            return
        for obj in node.get("objects") or ():
            with_args = obj.get("ObjectWithArgs") or {}
            names = n.strings(with_args.get("objname"))
            if names and names[-1].startswith(_OWN_PREFIX):
                continue
            name = ".".join(names)
            yield Finding(f"DROP {noun} {name} outside contract")
