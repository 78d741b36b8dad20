"""drop-sequence: DROP SEQUENCE before contract breaks inserts that take ids from it."""

from __future__ import annotations

from zdmigrate.lint.rules._base import Example
from zdmigrate.lint.rules._drop import DropRule
from zdmigrate.phases import Phase


class DropSequence(DropRule):
    id = "drop-sequence"
    summary = "DROP SEQUENCE outside the contract phase"
    why = "Inserts of the running app version call nextval() on it, or use a default that does."
    fix = "drop the sequence in the contract phase, once nothing live takes values from it."
    remove_types = ("OBJECT_SEQUENCE",)
    noun = "SEQUENCE"
    bad = (Example("DROP SEQUENCE invoice_numbers;"),)
    good = (Example("DROP SEQUENCE invoice_numbers;", phase=Phase.CONTRACT),)
