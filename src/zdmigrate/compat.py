"""Parsing a migration's `compat` declaration: which app versions fit which phase.

    compat = {"shop": {"dual_write_from": "1.5", "read_new_from": "2.0",
                       "old_unused_from": "2.0"}}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from zdmigrate.errors import MigrationFileError

KEYS = ("dual_write_from", "read_new_from", "old_unused_from")


@dataclass(frozen=True)
class AppCompat:
    """The version thresholds of one app for one migration (any may be None)."""

    app: str
    dual_write_from: Version | None = None
    read_new_from: Version | None = None
    old_unused_from: Version | None = None


def parse_compat(value: object, path: str) -> dict[str, AppCompat]:
    """Validate and parse `compat`; raises MigrationFileError (exit 2) when wrong."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MigrationFileError("compat must be a dict of app name -> {key: version}", path=path)
    out: dict[str, AppCompat] = {}
    for app, keys in value.items():
        if not isinstance(app, str) or not isinstance(keys, Mapping):
            raise MigrationFileError(f"compat[{app!r}] must be a dict of versions", path=path)
        parsed: dict[str, Version] = {}
        for key, raw in keys.items():
            if key not in KEYS:
                raise MigrationFileError(
                    f"compat[{app!r}] has unknown key {key!r}; known keys: {', '.join(KEYS)}",
                    path=path,
                )
            try:
                parsed[key] = Version(str(raw))
            except InvalidVersion:
                raise MigrationFileError(
                    f"compat[{app!r}][{key!r}] = {raw!r} is not a PEP 440 version", path=path
                ) from None
        out[app] = AppCompat(app, **parsed)
    return out
