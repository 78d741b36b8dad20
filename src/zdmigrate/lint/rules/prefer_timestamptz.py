"""prefer-timestamptz: timestamp without time zone loses the offset (hygiene, opt-in)."""

from __future__ import annotations

from zdmigrate.lint import _nodes as n
from zdmigrate.lint.rules._base import Example
from zdmigrate.lint.rules._column_type import ColumnTypeRule


class PreferTimestamptz(ColumnTypeRule):
    id = "prefer-timestamptz"
    summary = "timestamp (without time zone) column"
    why = (
        "timestamp stores wall-clock time with no offset: app servers in different time "
        "zones (or a changed TimeZone setting) silently read and write different instants."
    )
    fix = "use timestamptz, which stores an instant and converts on input and output."
    advice = "prefer timestamptz"
    bad = (Example("CREATE TABLE events (id bigint PRIMARY KEY, at timestamp);"),)
    good = (Example("CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz);"),)

    def bad_type(self, info: n.TypeInfo) -> bool:
        return info.name == "timestamp"
