"""What the demo has done so far (events, phases, backfills, fleet), as the views show it.

The pipeline and the monitor thread write it; the views (`zdmigrate.output.demo`) read it. Readers get copies; nothing here blocks for long, so a view refreshing four
times a second never slows the pipeline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zdmigrate.demo.shop import APP, DUAL_WRITING, OLD, role
from zdmigrate.phases import Phase


@dataclass(frozen=True)
class Event:
    """One line of the story: `kind` is info, deploy, gate, phase, refused, backfill or done."""

    at: float
    kind: str
    text: str


@dataclass
class DemoProgress:
    started: float = field(default_factory=time.monotonic)
    strategy: str = ""
    database: str = ""
    stage: str = "starting"
    migrations: list[str] = field(default_factory=list)
    phases: dict[str, Phase] = field(default_factory=dict)
    backfills: list[dict[str, Any]] = field(default_factory=list)
    #: What zdmigrate sees: live instances per version (heartbeats and sessions).
    seen: dict[str, int] = field(default_factory=dict)
    #: Instances the demo runs per version, and each version's traffic share.
    running: dict[str, int] = field(default_factory=dict)
    shares: dict[str, float] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    listeners: list[Callable[[Event], None]] = field(default_factory=list)
    #: The app the demo runs, and its versions the views list first, in order.
    app: str = APP
    versions: tuple[str, ...] = (OLD, DUAL_WRITING)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def role(self, version: str) -> str:
        """What a version is (old, dual-writing, new), in the words the views use."""
        return role(version)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def emit(self, kind: str, text: str) -> Event:
        event = Event(self.elapsed(), kind, text)
        with self._lock:
            self.events.append(event)
            listeners = list(self.listeners)
        for listener in listeners:
            listener(event)
        return event

    def recent_events(self, count: int) -> list[Event]:
        with self._lock:
            return self.events[-count:]

    def update(self, **values: Any) -> None:
        with self._lock:
            for name, value in values.items():
                setattr(self, name, value)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "stage": self.stage, "phases": dict(self.phases),
                "backfills": [dict(b) for b in self.backfills], "seen": dict(self.seen),
                "running": dict(self.running), "shares": dict(self.shares),
            }
