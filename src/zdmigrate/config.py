"""Settings from flags, then the environment, then ``[tool.zdmigrate]`` in pyproject.toml.

Flags win over the environment, the environment over the file. Durations are
seconds (a number) or strings like ``"2s"``, ``"500ms"``, ``"1min"``.

    settings = Settings.load(flags={"database_url": url})
    settings.lock_timeout  # 2.0
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from zdmigrate import dsn
from zdmigrate.errors import ConfigError

ENV_PREFIX = "ZDMIGRATE_"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know; build it with `Settings.load`."""

    database_url: str | None = None
    migrations: Path = Path("migrations")
    #: SET LOCAL lock_timeout for each DDL step, seconds.
    lock_timeout: float = 2.0
    #: SET LOCAL statement_timeout for each transactional step, seconds (0 = none).
    statement_timeout: float = 30.0
    #: statement_timeout for CONCURRENTLY steps, seconds (0 = none: they may be long).
    concurrent_statement_timeout: float = 0.0
    #: Keep retrying a step that hits lock_timeout for at least this long, seconds.
    retry_budget: float = 60.0
    #: First backoff between retries, seconds; doubles each try, with full jitter.
    retry_backoff: float = 0.2
    #: Longest single backoff, seconds.
    retry_backoff_max: float = 5.0
    #: Opt-in switch-read check: the live app instances (zdmigrate.runtime) must have
    #: compared rows in both shapes for at least this long with no mismatch, seconds (0 = off).
    shadow_read_window: float = 0.0
    #: The schema holding zdmigrate's own tables in the target database.
    state_schema: str = "zdmigrate"
    #: Who is acting, recorded in the phase log (default: OS user@host).
    actor: str | None = None
    #: Apps the gate lets through although no migration and no fleet row knows them yet
    #: (``new_apps = ["billing"]``; env ZDMIGRATE_NEW_APPS is comma-separated).
    new_apps: tuple[str, ...] = ()
    #: The app's SQLAlchemy models for `zdmigrate new --autogenerate`: "module:attribute",
    #: e.g. "shop.models:Base.metadata".
    target_metadata: str | None = None
    #: The app's name, as its instances report it (``app@version``): what generated
    #: migrations put in their `compat` block.
    app: str | None = None
    #: A file of targets, one ``name URL`` a line (docs/many-databases.md); relative to
    #: the pyproject.toml it is written in.
    targets_file: Path | None = None
    #: A command (run by /bin/sh -c) that prints the targets, one ``name URL`` a line.
    targets_command: str | None = None
    #: SQL returning the targets as (name, url) rows, run against targets_catalog_url.
    targets_query: str | None = None
    #: The database targets_query runs against (default: database_url).
    targets_catalog_url: str | None = None
    #: How many targets a command works on at once.
    parallel: int = 4
    #: ``[tool.zdmigrate.lint]``, ``[tool.zdmigrate.targets]`` and other nested tables,
    #: passed through as-is.
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Where the pyproject.toml came from, if one was read.
    config_file: Path | None = None

    @classmethod
    def load(
        cls,
        flags: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        pyproject: Path | None = None,
    ) -> Settings:
        """Merge file < environment < flags. `None` flag values count as not given."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        config_file = pyproject if pyproject is not None else _find_pyproject(Path.cwd())
        if config_file is not None and config_file.exists():
            section = _read_section(config_file)
            for key, value in section.items():
                name = key.replace("-", "_")
                if isinstance(value, dict):
                    extra[name] = value
                elif name in _FIELD_NAMES:
                    values[name] = value
                else:
                    raise ConfigError(
                        f"{config_file}: [tool.zdmigrate] has an unknown key {key!r}",
                        hint="known keys: " + ", ".join(sorted(_FIELD_NAMES)),
                    )
            for name in ("migrations", "targets_file"):
                if name in values:
                    # a relative path in the file is relative to the file
                    values[name] = config_file.parent / str(values[name])
        for name in _FIELD_NAMES:
            env_value = environ.get(ENV_PREFIX + name.upper())
            if env_value not in (None, ""):
                values[name] = env_value
        for name, value in (flags or {}).items():
            if value is not None:
                values[name] = value
        return cls._validated(values, extra, config_file)

    @classmethod
    def _validated(
        cls, values: dict[str, Any], extra: dict[str, Any], config_file: Path | None
    ) -> Settings:
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name in _DURATIONS:
                out[name] = _bounded(name, value, parse_duration(value, name))
            elif name in ("migrations", "targets_file"):
                out[name] = Path(value)
            elif name == "parallel":
                out[name] = _parallel(value)
            elif name == "new_apps":
                out[name] = _name_list(value, name)
            elif name == "state_schema":
                if not isinstance(value, str) or not _IDENT.match(value):
                    raise ConfigError(
                        f"state_schema {value!r} is not a plain SQL identifier "
                        "(letters, digits, _ and $, starting with a letter or _)"
                    )
                out[name] = value
            elif name in ("database_url", "targets_catalog_url") and value:
                problem = dsn.problem(str(value))
                if problem is not None:
                    raise ConfigError(problem if name == "database_url" else f"{name}: {problem}",
                                      hint="e.g. postgresql://user@host:5432/dbname")
                out[name] = str(value)
            else:
                out[name] = None if value is None else str(value)
        return cls(**out, extra=extra, config_file=config_file)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def require_database(self) -> str:
        if not self.database_url:
            raise ConfigError(
                "no database URL given",
                hint="pass --database-url or set ZDMIGRATE_DATABASE_URL",
            )
        return self.database_url

    @property
    def lint(self) -> Mapping[str, Any]:
        value = self.extra.get("lint", {})
        return value if isinstance(value, Mapping) else {}


_DURATIONS = {
    "lock_timeout",
    "statement_timeout",
    "concurrent_statement_timeout",
    "retry_budget",
    "retry_backoff",
    "retry_backoff_max",
    "shadow_read_window",
}
_FIELD_NAMES = {f.name for f in fields(Settings)} - {"extra", "config_file"}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "sec": 1.0, "ms": 0.001, "min": 60.0, "m": 60.0, "h": 3600.0}


def _name_list(value: Any, name: str) -> tuple[str, ...]:
    """A list of names from the file (a list) or the environment (comma-separated)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"{name}: {value!r} is not a list of names",
                          hint=f'write e.g. {name} = ["billing"]')
    return tuple(i.strip() for i in items if i.strip())


PARALLEL_MAX = 256


def _parallel(value: Any) -> int:
    """How many targets at once: a whole number from 1 to PARALLEL_MAX."""
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or not 1 <= number <= PARALLEL_MAX:
        raise ConfigError(f"parallel: {value!r} is not a whole number from 1 to {PARALLEL_MAX}",
                          hint="e.g. parallel = 8")
    return number


def parse_duration(value: Any, name: str = "duration") -> float:
    """Seconds from a number or a string such as ``"2s"``, ``"250ms"``, ``"1min"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION_RE.match(str(value))
        if not match:
            raise ConfigError(
                f"{name}: {value!r} is not a duration", hint="write e.g. 2, 2s, 500ms or 1min"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise ConfigError(f"{name}: {value!r} is negative")
    return seconds


#: Durations PostgreSQL receives, in whole milliseconds: 0 there means "no timeout", and it
#: takes at most 2^31-1 ms. lock_timeout may not be 0 at all: a DDL step without one
#: queues the application behind it for as long as a blocker holds its lock.
_SERVER_TIMEOUTS = {"lock_timeout", "statement_timeout", "concurrent_statement_timeout"}
LOCK_TIMEOUT_MIN = 0.01
LOCK_TIMEOUT_MAX = 600.0
_SERVER_TIMEOUT_MAX = 2_147_483.0
_DURATION_MAX = 7 * 24 * 3600.0


def _bounded(name: str, raw: Any, seconds: float) -> float:
    """Refuse durations PostgreSQL would misread (under 1 ms reads as 0 = none) or absurd ones."""
    if name == "lock_timeout":
        low, high = LOCK_TIMEOUT_MIN, LOCK_TIMEOUT_MAX
    elif name in _SERVER_TIMEOUTS:
        if seconds == 0:
            return seconds  # 0 = none, on purpose
        low, high = 0.001, _SERVER_TIMEOUT_MAX
    else:
        low, high = 0.0, _DURATION_MAX
    if not math.isfinite(seconds) or not low <= seconds <= high:
        raise ConfigError(
            f"{name}: {raw!r} is out of range: give between {_show(low)} and {_show(high)}",
            hint="lock_timeout 0 would mean no timeout at all in PostgreSQL"
            if name == "lock_timeout" else None,
        )
    return seconds


def _show(seconds: float) -> str:
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def _find_pyproject(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _read_section(path: Path) -> dict[str, Any]:
    # imported here: a run without a pyproject.toml (most `zdmigrate lint` in CI) needs no TOML
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None
    section = data.get("tool", {}).get("zdmigrate", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.zdmigrate] must be a table")
    return section


def redact_url(url: str | None) -> str:
    """The URL or DSN with any password replaced by ``***``: safe to print (see `zdmigrate.dsn`)."""
    return dsn.redact(url)
