"""drop-schema: DROP SCHEMA before contract removes everything old app versions use in it."""

from __future__ import annotations

from zdmigrate.lint.rules._base import Example
from zdmigrate.lint.rules._drop import DropRule
from zdmigrate.phases import Phase


class DropSchema(DropRule):
    id = "drop-schema"
    summary = "DROP SCHEMA outside the contract phase"
    why = "Every table, view and function in the schema disappears under the running app version."
    fix = "drop the schema in the contract phase, after its objects are no longer used by any live version."
    remove_types = ("OBJECT_SCHEMA",)
    noun = "SCHEMA"
    bad = (Example("DROP SCHEMA reporting CASCADE;"),)
    good = (Example("DROP SCHEMA reporting CASCADE;", phase=Phase.CONTRACT),)
