"""The Instance model: one live app instance, from one source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from packaging.version import Version

from zdmigrate.compat import parse_version
from zdmigrate.compat.checks import timestamp

SOURCES = ("heartbeat", "declared", "session")


@dataclass(frozen=True)
class Instance:
    """One live app instance, from one source."""

    app: str
    instance_id: str
    version: str
    source: str
    last_seen: datetime
    expires_at: datetime
    ttl_seconds: int
    started_at: datetime | None = None
    host: str | None = None
    pid: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    #: The targets (databases, by name) it was seen on, when the fleet was read across
    #: several (`fleet_across`); empty for the fleet of one database.
    targets: tuple[str, ...] = ()

    @property
    def parsed_version(self) -> Version | None:
        return parse_version(self.version)

    def describe(self) -> str:
        """``shop 1.4 (instance web-1, source heartbeat, last seen ..., counts until ...)``.

        Across targets, where it was seen comes first: ``... (instance web-1 on shard-03, ...)``.
        """
        on = f" on {targets_text(self.targets)}" if self.targets else ""
        return (
            f"{self.app} {self.version} (instance {self.instance_id}{on}, source {self.source}, "
            f"last seen {timestamp(self.last_seen)}, counts until {timestamp(self.expires_at)})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "version": self.version,
            "instance_id": self.instance_id,
            "source": self.source,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "last_seen": self.last_seen.isoformat(),
            "ttl_seconds": self.ttl_seconds,
            "expires_at": self.expires_at.isoformat(),
            "info": dict(self.info),
            **({"targets": list(self.targets)} if self.targets else {}),
        }


def instance_from_row(row: Mapping[str, Any]) -> Instance:
    """An Instance from a row of `zdmigrate.state.instances`."""
    return Instance(
        app=row["app"],
        instance_id=row["instance_id"],
        version=row["version"],
        source=row["source"],
        last_seen=row["last_seen"],
        expires_at=row["expires_at"],
        ttl_seconds=int(row["ttl_seconds"]),
        started_at=row["started_at"],
        host=row["host"],
        pid=row["pid"],
        info=row["info"] or {},
    )


def targets_text(names: tuple[str, ...] | list[str], shown: int = 3) -> str:
    """``shard-01``, ``shard-01, shard-02``, or ``shard-01, shard-02, shard-03 and 13 more``."""
    names = list(names)
    if len(names) <= shown + 1:
        return ", ".join(names)
    return ", ".join(names[:shown]) + f" and {len(names) - shown} more"
