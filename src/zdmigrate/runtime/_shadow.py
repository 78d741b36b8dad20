"""Shadow-read counters: how many rows were compared in both shapes, and how many differed.

Counts are kept per migration and per phase: when a migration's phase changes
the count starts again, because mismatches before the backfill (rows not yet
copied) say nothing about the data at switch-read time. A snapshot rides on
each heartbeat in ``instances.info``::

    {"shadow_reads": {"0002_rename": {"compared": 120, "mismatched": 0, "phase": "backfill",
                                      "since": "2024-...", "last_mismatch": null}}}
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from zdmigrate.phases import Phase


@dataclass
class _Count:
    phase: Phase
    since: datetime
    compared: int = 0
    mismatched: int = 0
    last_mismatch: datetime | None = None


class ShadowReadCounts:
    """Thread-safe counters; `record` is called from request threads."""

    def __init__(self) -> None:
        self._counts: dict[str, _Count] = {}
        self._lock = threading.Lock()

    def record(self, migration: str, phase: Phase, matched: bool) -> None:
        with self._lock:
            count = self._counts.get(migration)
            if count is None or count.phase is not phase:
                count = self._counts[migration] = _Count(phase, datetime.now(timezone.utc))
            count.compared += 1
            if not matched:
                count.mismatched += 1
                count.last_mismatch = datetime.now(timezone.utc)

    def snapshot(self) -> dict[str, dict[str, object]]:
        """The counts as heartbeats carry them (JSON-ready)."""
        with self._lock:
            return {
                migration: {
                    "compared": c.compared,
                    "mismatched": c.mismatched,
                    "phase": c.phase.value,
                    "since": c.since.isoformat(),
                    "last_mismatch": c.last_mismatch.isoformat() if c.last_mismatch else None,
                }
                for migration, c in self._counts.items()
            }

    def reset(self) -> None:
        """Start from zero with a new lock (in a forked child: a new instance)."""
        self._counts = {}
        self._lock = threading.Lock()
