"""prefer-text-over-char: char(n) pads with spaces (hygiene, opt-in)."""

from __future__ import annotations

from zdmigrate.lint import _nodes as n
from zdmigrate.lint.rules._base import Example
from zdmigrate.lint.rules._column_type import ColumnTypeRule


class PreferTextOverChar(ColumnTypeRule):
    id = "prefer-text-over-char"
    summary = "char(n) / character(n) column"
    why = (
        "char(n) pads values with spaces and compares ignoring them, which surprises "
        "apps, and it is no faster than text."
    )
    fix = "use text (with a CHECK constraint on length if needed)."
    advice = "prefer text"
    bad = (Example("CREATE TABLE countries (code char(2) PRIMARY KEY);"),)
    good = (Example("CREATE TABLE countries (code text PRIMARY KEY CHECK (length(code) = 2));"),)

    def bad_type(self, info: n.TypeInfo) -> bool:
        return info.name == "bpchar"
