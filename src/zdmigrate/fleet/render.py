"""The live instances as an aligned text table (what `zdmigrate fleet` prints)."""

from __future__ import annotations

from collections.abc import Sequence

from zdmigrate.compat.checks import timestamp
from zdmigrate.fleet.model import Instance


def render_table(instances: Sequence[Instance]) -> str:
    """The instances as an aligned text table (what `zdmigrate fleet` prints)."""
    if not instances:
        return "no live instances (no heartbeats, app@version sessions or declarations)"
    header = ("APP", "VERSION", "SOURCE", "INSTANCE", "LAST SEEN", "COUNTS UNTIL")
    rows = [
        (i.app, i.version, i.source, i.instance_id, timestamp(i.last_seen), timestamp(i.expires_at))
        for i in instances
    ]
    widths = [max(len(r[n]) for r in (header, *rows)) for n in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )
