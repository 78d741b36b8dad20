"""The fleet across several targets (shards, tenant databases): instances seen on any count.

An app spread over 16 shards connects to all of them, or some of its instances
to some: its old version is gone only when no target sees it. `fleet_across`
reads every target's live instances (in parallel, at most `parallel` at once)
and merges them: the same instance (app, id, version, source) seen on several
targets is one instance listing them all, live until the latest of its expiries.

Fails closed: a target that cannot be read proves nothing about the instances on
it, so `TargetsFailed` (exit 3) names it and no answer is given.

    instances = fleet_across(targets, settings)
    [i.describe() for i in instances]  # "shop 1.9 (instance web-1 on shard-03, ...)"
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace

from zdmigrate import db
from zdmigrate.config import Settings
from zdmigrate.errors import TargetsFailed
from zdmigrate.fleet.model import Instance
from zdmigrate.fleet.settings import FleetSettings
from zdmigrate.fleet.sources import instance_order, live_instances
from zdmigrate.targets import NamedTarget, each_target


def fleet_across(
    targets: Sequence[NamedTarget],
    settings: Settings,
    *,
    app: str | None = None,
    parallel: int | None = None,
    remember_sessions: bool = True,
) -> list[Instance]:
    """Every live instance on any of `targets`, each listing the targets it was seen on.

    At most `parallel` targets are read at once (default: the settings' `parallel`).

    Raises `TargetsFailed` (exit 3) naming every target that could not be read:
    an unread target might hold the one old instance that matters.
    """
    fleet_settings = FleetSettings.from_settings(settings)
    parallel = parallel or settings.parallel

    def read(target: NamedTarget) -> list[Instance]:
        with db.connect(target.url, application_name="zdmigrate fleet") as conn:
            return live_instances(conn, settings.state_schema, fleet_settings, app=app,
                                  remember_sessions=remember_sessions)

    found, failures = each_target(targets, read, parallel=parallel)
    if failures:
        raise TargetsFailed(
            "cannot read which app versions are live", failures,
            hint="a target whose fleet is unknown proves nothing; fix it, or leave it out "
            "with --target if it is decommissioned",
        )
    return merge_across({t.name: found[t.name] for t in targets})


def merge_across(by_target: dict[str, list[Instance]]) -> list[Instance]:
    """One instance per (app, id, version, source), with every target it was seen on.

    It counts until the latest of its expiries (fail safe) and was last seen at the
    latest of its sightings. Sorted as `live_instances` sorts.
    """
    merged: dict[tuple[str, str, str, str], Instance] = {}
    for name, instances in by_target.items():
        for i in instances:
            key = (i.app, i.instance_id, i.version, i.source)
            seen = merged.get(key)
            if seen is None:
                merged[key] = replace(i, targets=(name,))
                continue
            merged[key] = replace(
                seen, targets=(*seen.targets, name),
                last_seen=max(seen.last_seen, i.last_seen),
                expires_at=max(seen.expires_at, i.expires_at),
            )
    return sorted(merged.values(), key=instance_order)


class SharedFleet:
    """`fleet_across` for many phase checks at once: read once, shared, re-read when stale.

    The checks of 16 targets entering contract each need the whole set's fleet;
    reading it 16 times over 16 targets would be 256 connections. One instance of
    this is given to every target's checks (`CheckContext.fleet_instances`): the
    first call reads, concurrent calls wait for that read, and a read older than
    `max_age` seconds is made again. Each target's own check adds what it sees
    itself at that moment, so an instance that appears there later counts too.

        shared = SharedFleet(targets, settings)
        engine.advance(target_settings, "0002_rename", fleet_instances=shared)
    """

    def __init__(
        self, targets: Sequence[NamedTarget], settings: Settings, *,
        parallel: int | None = None, max_age: float = 5.0,
    ) -> None:
        self.targets = list(targets)
        self.settings = settings
        self.parallel = parallel or settings.parallel
        self.max_age = max_age
        self.reads = 0
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._instances: list[Instance] = []

    def __call__(self) -> list[Instance]:
        with self._lock:
            now = time.monotonic()
            if self._read_at is None or now - self._read_at > self.max_age:
                self._instances = fleet_across(self.targets, self.settings,
                                               parallel=self.parallel, remember_sessions=False)
                self._read_at = time.monotonic()
                self.reads += 1
            return list(self._instances)
