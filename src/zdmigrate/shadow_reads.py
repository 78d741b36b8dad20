"""Shadow reads reported by app instances, and the opt-in switch-read check on them.

Each instance of ``zdmigrate.runtime`` compares rows in both shapes
(``DualWrite.compare``) and reports its counts on its heartbeat, in
``instances.info["shadow_reads"][migration_id]``. With ``shadow_read_window`` set,
switch-read waits until the live instances compared rows for that long without a
mismatch. Timestamps come from the app machines' clocks: keep them in sync (NTP).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg

from zdmigrate import fleet
from zdmigrate.errors import Blocker
from zdmigrate.phases import Phase


def counts(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, phase: Phase
) -> dict[str, Any] | None:
    """Shadow reads of a migration during `phase`, summed over live runtime instances;
    None when none reported any."""
    total: dict[str, Any] | None = None
    for instance in fleet.stored_instances(conn, schema):
        reported = (instance.info.get("shadow_reads") or {}).get(migration_id)
        if not isinstance(reported, dict) or reported.get("phase") != phase.value:
            continue
        if total is None:
            total = {"phase": phase.value, "compared": 0, "mismatched": 0, "instances": 0,
                     "since": None, "last_mismatch": None}
        total["compared"] += int(reported.get("compared") or 0)
        total["mismatched"] += int(reported.get("mismatched") or 0)
        total["instances"] += 1
        for key, pick in (("since", min), ("last_mismatch", max)):
            value = _timestamp(reported.get(key))
            if value is not None:
                total[key] = value if total[key] is None else pick(total[key], value)
    return total


def blocker(
    conn: psycopg.Connection[Any], schema: str, migration_id: str, window: float
) -> Blocker | None:
    """Why switch-read must wait for shadow reads, or None when they cover `window`
    seconds of backfill without a mismatch."""
    total = counts(conn, schema, migration_id, Phase.BACKFILL)
    now = datetime.now(timezone.utc)
    span = timedelta(seconds=window)
    if total is None or not total["compared"]:
        message = (f"no live app instance reported shadow reads of {migration_id} at "
                   "backfill; compare rows with DualWrite.compare (zdmigrate.runtime), "
                   "or set shadow_read_window = 0")
    elif total["last_mismatch"] is not None and total["last_mismatch"] > now - span:
        message = (f"{total['mismatched']:,} of {total['compared']:,} shadow reads of "
                   f"{migration_id} disagreed, the last at {total['last_mismatch']:%H:%M:%S}; "
                   f"fix the rows (run the backfill again) and wait {window:g}s without one")
    elif total["since"] is None or total["since"] > now - span:
        message = (f"shadow reads of {migration_id} cover less than the required "
                   f"{window:g}s window so far; wait")
    else:
        return None
    return Blocker("shadow-reads", message, {"shadow_reads": jsonable(total)})


def jsonable(total: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in (total or {}).items()}


def _timestamp(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
