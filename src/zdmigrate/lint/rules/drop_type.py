"""drop-type: DROP TYPE / DROP DOMAIN before contract breaks columns and casts old versions use."""

from __future__ import annotations

from zdmigrate.lint.rules._base import Example
from zdmigrate.lint.rules._drop import DropRule
from zdmigrate.phases import Phase


class DropType(DropRule):
    id = "drop-type"
    summary = "DROP TYPE or DROP DOMAIN outside the contract phase"
    why = (
        "The running app version casts to the type or writes columns of it "
        "(with CASCADE, those columns are dropped too)."
    )
    fix = "drop the type in the contract phase, once no live version and no column uses it."
    remove_types = ("OBJECT_TYPE", "OBJECT_DOMAIN")
    noun = "TYPE"
    bad = (Example("DROP TYPE order_status;"),)
    good = (Example("DROP TYPE order_status;", phase=Phase.CONTRACT),)
