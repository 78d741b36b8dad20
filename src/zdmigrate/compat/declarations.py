"""A migration's `compat` declaration: which app versions fit which phase (parsing it).

    compat = {"shop": {"dual_write_from": "1.5", "read_new_from": "2.0",
                       "old_unused_from": "2.0"}}

Per app, every key may be left out, but those given must be PEP 440 versions in
the order dual_write_from <= read_new_from <= old_unused_from (a version that
reads the new shape must already write it; one that no longer touches the old
shape must already read the new one). A version below *any* threshold still
uses the old shape: that is what `old_shape_until` returns, and what the
contract checks compare against.
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

    @property
    def old_shape_until(self) -> tuple[str, Version] | None:
        """The first version that no longer uses the old shape, and the key it comes from.

        `old_unused_from` when given; otherwise the highest threshold given (a
        version below `read_new_from` still reads the old shape, one below
        `dual_write_from` still writes only the old shape).
        """
        for key in reversed(KEYS):
            value: Version | None = getattr(self, key)
            if value is not None:
                return key, value
        return None

    def as_dict(self) -> dict[str, str]:
        return {key: str(getattr(self, key)) for key in KEYS if getattr(self, key) is not None}


def parse_version(raw: object) -> Version | None:
    """A PEP 440 version from what an app reported, or None when it is not one."""
    try:
        return Version(str(raw).strip())
    except InvalidVersion:
        return None


def parse_compat(value: object, path: str, line: int | None = None) -> dict[str, AppCompat]:
    """Validate and parse `compat`; raises MigrationFileError (exit 2) when wrong.

    Checks: a dict of app name -> dict; known keys only; each value a PEP 440
    version; at least one key per app; dual_write_from <= read_new_from <=
    old_unused_from for the keys that are given.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MigrationFileError(
            f"compat must be a dict of app name -> {{key: version}}, not {type(value).__name__}",
            path=path, line=line,
        )
    out: dict[str, AppCompat] = {}
    for app, keys in value.items():
        if not isinstance(app, str) or not app.strip():
            raise MigrationFileError(
                f"compat has an app name {app!r} that is not a non-empty string",
                path=path, line=line,
            )
        if not isinstance(keys, Mapping):
            raise MigrationFileError(
                f"compat[{app!r}] must be a dict of versions, e.g. "
                "{'read_new_from': '2.0'}",
                path=path, line=line,
            )
        if not keys:
            raise MigrationFileError(
                f"compat[{app!r}] declares no version; give at least one of: {', '.join(KEYS)}",
                path=path, line=line,
            )
        parsed: dict[str, Version] = {}
        for key, raw in keys.items():
            if key not in KEYS:
                raise MigrationFileError(
                    f"compat[{app!r}] has unknown key {key!r}; known keys: {', '.join(KEYS)}",
                    path=path, line=line,
                )
            if isinstance(raw, float):
                # 1.10 would silently become 1.1
                raise MigrationFileError(
                    f"compat[{app!r}][{key!r}] = {raw!r} is a float, not a version string",
                    path=path, line=line, hint=f"write it as a string: {key!r}: '{raw}'",
                )
            ok_type = isinstance(raw, str) or (isinstance(raw, int) and not isinstance(raw, bool))
            version = parse_version(raw) if ok_type else None
            if version is None:
                raise MigrationFileError(
                    f"compat[{app!r}][{key!r}] = {raw!r} is not a PEP 440 version",
                    path=path, line=line, hint="write it as a string, e.g. '2.0' or '1.5.3'",
                )
            parsed[key] = version
        _check_order(app, parsed, path, line)
        out[app] = AppCompat(app, **parsed)
    return out


def _check_order(app: str, parsed: Mapping[str, Version], path: str, line: int | None) -> None:
    given = [(key, parsed[key]) for key in KEYS if key in parsed]
    for i, (low_key, low) in enumerate(given):
        for high_key, high in given[i + 1 :]:
            if low > high:
                raise MigrationFileError(
                    f"compat[{app!r}]: {low_key} {low} is after {high_key} {high}; "
                    "the order must be dual_write_from <= read_new_from <= old_unused_from",
                    path=path, line=line,
                    hint=_ORDER_HINT[(low_key, high_key)],
                )


_ORDER_HINT = {
    ("dual_write_from", "read_new_from"): "a version that reads the new shape must also write it",
    ("dual_write_from", "old_unused_from"): (
        "a version that no longer touches the old shape must write the new one"
    ),
    ("read_new_from", "old_unused_from"): (
        "a version that no longer touches the old shape must read the new one"
    ),
}
