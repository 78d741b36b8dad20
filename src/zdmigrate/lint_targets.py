"""What `zdmigrate lint` reads: .sql files, stdin, migration directories, Alembic projects, globs.

Python migrations are loaded with `zdmigrate.migration` (and so Alembic) only
when a path actually holds Python files; a run over .sql files and stdin never
imports SQLAlchemy or Alembic.

A directory is read as: an Alembic project when it holds ``alembic.ini`` (its
``script_location``/versions) or ``env.py`` with a ``versions/`` folder; else
its ``*.py`` files are migrations (Alembic's revision map orders them) and its
``*.sql`` files are SQL, linted in name order.
"""

from __future__ import annotations

import configparser
import glob
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from zdmigrate.errors import BadInput

_GLOB_CHARS = set("*?[")


@dataclass
class LintTargets:
    """SQL texts (path, text) and loaded migrations, in the order they are linted."""

    sql: list[tuple[str, str]] = field(default_factory=list)
    migrations: list[Any] = field(default_factory=list)  # zdmigrate.migration.Migration

    @property
    def files(self) -> int:
        return len(self.sql) + len(self.migrations)


def collect(
    paths: Sequence[str], *, default_dir: Path, stdin: TextIO | None = None,
    since: str | None = None,
) -> LintTargets:
    """Resolve CLI paths into what to lint; a missing path is BadInput (exit 2)."""
    targets = LintTargets()
    seen_sql: set[str] = set()
    seen_migrations: set[str] = set()
    expanded: list[str] = []
    for raw in paths or [str(default_dir)]:
        if raw != "-" and _GLOB_CHARS & set(raw):
            matches = sorted(glob.glob(raw, recursive=True))
            if not matches:
                raise BadInput(f"lint: no file matches {raw!r}")
            expanded.extend(matches)
        else:
            expanded.append(raw)
    for raw in expanded:
        if raw == "-":
            text = (stdin or sys.stdin).read()
            targets.sql.append(("<stdin>", text))
            continue
        path = Path(raw)
        if raw.endswith(".sql"):  # the common case, with one stat instead of four
            key = str(path)
            if key not in seen_sql:
                seen_sql.add(key)
                targets.sql.append((raw, _read(path)))
            continue
        if not path.exists():
            raise BadInput(f"lint: {raw} does not exist")
        for migration in _migrations_at(path):
            key = str(migration.path)
            if key not in seen_migrations:
                seen_migrations.add(key)
                targets.migrations.append(migration)
        for sql_path in _sql_files_at(path):
            key = str(sql_path)
            if key not in seen_sql:
                seen_sql.add(key)
                targets.sql.append((raw if path.is_file() else str(sql_path), _read(sql_path)))
    if since is not None:
        _skip_until(targets, since)
    return targets


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"lint: {path} does not exist") from None
    except IsADirectoryError:
        raise BadInput(f"lint: {path} is a directory, not a .sql file") from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"lint: {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise BadInput(f"lint: cannot read {path}: {exc.strerror}") from None


def _sql_files_at(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix.lower() != ".py" and path.name != "alembic.ini" else []
    return sorted(p for p in path.glob("*.sql") if p.is_file())


def _migrations_at(path: Path) -> list[Any]:
    if path.is_file():
        if path.name == "alembic.ini":
            return _load_dir(_versions_of_project(path))
        if path.suffix == ".py":
            from zdmigrate.migration import load_file

            return [load_file(path)]
        return []
    if (path / "alembic.ini").is_file():
        return _load_dir(_versions_of_project(path / "alembic.ini"))
    if (path / "env.py").is_file() and (path / "versions").is_dir():
        return _load_dir(path / "versions")
    if any(not p.name.startswith(("_", ".")) for p in path.glob("*.py")):
        return _load_dir(path)
    return []


def _load_dir(folder: Path) -> list[Any]:
    from zdmigrate.migration import load_migrations

    return list(load_migrations(folder))


def _versions_of_project(ini: Path) -> Path:
    parser = configparser.ConfigParser(defaults={"here": str(ini.parent.resolve())})
    try:
        parser.read(ini, encoding="utf-8")
        location = parser.get("alembic", "script_location")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise BadInput(f"lint: {ini}: no [alembic] script_location ({exc})") from None
    if ":" in location and not Path(location).exists() and not location.startswith("/"):
        raise BadInput(f"lint: {ini}: script_location {location!r} is a package resource; "
                       "pass its versions directory instead")
    folder = Path(location)
    if not folder.is_absolute():
        folder = ini.parent / folder
    versions = folder / "versions"
    if not versions.is_dir():
        raise BadInput(f"lint: {ini}: no versions directory at {versions}")
    return versions


def _skip_until(targets: LintTargets, since: str) -> None:
    """Drop history up to and including revision `since` (grandfathering)."""
    found = False
    ids = [m.id for m in targets.migrations]
    if since in ids:
        targets.migrations = targets.migrations[ids.index(since) + 1 :]
        found = True
    names = [Path(p).stem for p, _ in targets.sql]
    for i, name in enumerate(names):
        if name == since or name.startswith(since):
            targets.sql = targets.sql[i + 1 :]
            found = True
            break
    if not found:
        raise BadInput(
            f"lint: --since {since!r} is not a revision (or .sql file name) among the linted paths"
        )
