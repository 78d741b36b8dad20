"""drop-view: DROP VIEW / MATERIALIZED VIEW before contract breaks old readers of the view."""

from __future__ import annotations

from zdmigrate.lint.rules._base import Example
from zdmigrate.lint.rules._drop import DropRule
from zdmigrate.phases import Phase


class DropView(DropRule):
    id = "drop-view"
    summary = "DROP VIEW or DROP MATERIALIZED VIEW outside the contract phase"
    why = "The app version still running queries the view; its queries fail once it is gone."
    fix = (
        "create the replacement view in expand, switch readers, and drop the old view "
        "in the contract phase."
    )
    remove_types = ("OBJECT_VIEW", "OBJECT_MATVIEW")
    noun = "VIEW"
    bad = (Example("DROP VIEW active_users;"),)
    good = (Example("DROP VIEW active_users;", phase=Phase.CONTRACT),)
