"""prefer-text: varchar(n) limits are costly to change (hygiene, opt-in)."""

from __future__ import annotations

from zdmigrate.lint import _nodes as n
from zdmigrate.lint.rules._base import Example
from zdmigrate.lint.rules._column_type import ColumnTypeRule


class PreferText(ColumnTypeRule):
    id = "prefer-text"
    summary = "varchar(n) column"
    why = (
        "varchar(n) is stored like text; the length limit only adds a check, and lowering "
        "it later scans the table under ACCESS EXCLUSIVE."
    )
    fix = "use text, with CHECK (length(col) <= n) NOT VALID if a limit is needed (easy to change)."
    advice = "prefer text"
    bad = (Example("CREATE TABLE users (id bigint PRIMARY KEY, email varchar(255));"),)
    good = (Example("CREATE TABLE users (id bigint PRIMARY KEY, email text);"),)

    def bad_type(self, info: n.TypeInfo) -> bool:
        return info.name == "varchar" and bool(info.mods)
