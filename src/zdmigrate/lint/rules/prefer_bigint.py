"""prefer-bigint: integer / serial columns run out at 2^31 (hygiene, opt-in)."""

from __future__ import annotations

from zdmigrate.lint import _nodes as n
from zdmigrate.lint.rules._base import Example
from zdmigrate.lint.rules._column_type import ColumnTypeRule


class PreferBigint(ColumnTypeRule):
    id = "prefer-bigint"
    summary = "integer (int4) or serial column"
    why = (
        "A 32-bit column overflows at 2,147,483,647; widening it later is a full table "
        "rewrite under ACCESS EXCLUSIVE, exactly the migration this tool exists to avoid."
    )
    fix = "use bigint (or bigint GENERATED ... AS IDENTITY) from the start; it costs 4 bytes a row."
    advice = "prefer bigint"
    bad = (Example("CREATE TABLE invoices (id integer PRIMARY KEY);"),)
    good = (Example("CREATE TABLE invoices (id bigint PRIMARY KEY);"),)

    def bad_type(self, info: n.TypeInfo) -> bool:
        return info.name in ("int4", "serial4")
