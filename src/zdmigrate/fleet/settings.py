"""``[tool.zdmigrate.fleet]``: how sessions are recognised, and the default TTLs."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zdmigrate.config import Settings, parse_duration
from zdmigrate.errors import ConfigError

DEFAULT_APPLICATION_NAME_PATTERN = r"^(?P<app>[A-Za-z0-9_.\-]+)@(?P<version>[^\s@]+)$"


@dataclass(frozen=True)
class FleetSettings:
    """``[tool.zdmigrate.fleet]``: how sessions are recognised and default TTLs.

        [tool.zdmigrate.fleet]
        application_name_pattern = '^(?P<app>[a-z-]+)/(?P<version>.+)$'
        session_ttl = "5min"
    """

    #: Regex with named groups ``app`` and ``version``, matched against application_name.
    application_name_pattern: str = DEFAULT_APPLICATION_NAME_PATTERN
    #: How long a session seen in pg_stat_activity still counts after it is gone, seconds.
    session_ttl: int = 300
    #: Default TTL of `fleet heartbeat`, seconds.
    heartbeat_ttl: int = 60
    #: Default TTL of `fleet declare`, seconds.
    declare_ttl: int = 86400

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.application_name_pattern)

    @classmethod
    def from_settings(cls, settings: Settings) -> FleetSettings:
        raw = settings.extra.get("fleet", {})
        if not isinstance(raw, Mapping):
            raise ConfigError("[tool.zdmigrate.fleet] must be a table")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            name = str(key).replace("-", "_")
            if name == "application_name_pattern":
                values[name] = _valid_pattern(value)
            elif name in ("session_ttl", "heartbeat_ttl", "declare_ttl"):
                values[name] = ttl_seconds(value, f"fleet.{name}")
            else:
                raise ConfigError(
                    f"[tool.zdmigrate.fleet] has an unknown key {key!r}",
                    hint="known keys: application_name_pattern, session_ttl, heartbeat_ttl, "
                    "declare_ttl",
                )
        return cls(**values)


def _valid_pattern(value: object) -> str:
    try:
        compiled = re.compile(str(value))
    except re.error as exc:
        raise ConfigError(f"fleet.application_name_pattern {value!r} is not a regex: {exc}") from None
    missing = {"app", "version"} - set(compiled.groupindex)
    if missing:
        raise ConfigError(
            f"fleet.application_name_pattern {value!r} lacks the named group(s) "
            + ", ".join(sorted(missing)),
            hint="e.g. '^(?P<app>[a-z-]+)@(?P<version>.+)$'",
        )
    return str(value)


def ttl_seconds(value: object, name: str = "ttl") -> int:
    """Whole seconds (at least 1) from a number or a duration string such as ``"5min"``."""
    seconds = parse_duration(value, name)
    if seconds <= 0:
        raise ConfigError(f"{name}: {value!r} must be more than 0 seconds")
    return max(1, math.ceil(seconds))
