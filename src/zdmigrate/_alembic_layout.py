"""Where an Alembic project keeps its revisions, read the way Alembic reads its config.

Layouts, most explicit first:

- ``alembic.ini`` with ``script_location`` (``%(here)s`` is the ini's folder;
  ``package:path`` resources work), and ``version_locations`` when set;
- ``[tool.alembic]`` in ``pyproject.toml`` (Alembic 1.16+), alone or beside an ini;
- Flask-Migrate's ``migrations/``: env.py, versions/ and an alembic.ini without
  ``script_location`` (Flask-Migrate passes the folder on its command line);
- a folder with ``env.py`` and ``versions/``;
- a bare folder of revision files (``versions/`` itself).

``prepend_sys_path`` entries are taken relative to the config file's folder
(Alembic takes them relative to the working directory, which is the same
when it runs from the project root).
"""

from __future__ import annotations

import configparser
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zdmigrate.errors import BadInput

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class AlembicLayout:
    """One project: its version folders, env.py (if any) and config files."""

    versions: tuple[Path, ...]
    script_location: Path | None = None
    env_py: Path | None = None
    ini: Path | None = None
    toml: Path | None = None
    sys_paths: tuple[str, ...] = ()

    def alembic_config(self, **kwargs: Any) -> Any:
        """An `alembic.config.Config` for this project (script_location set when the files lack it)."""
        from alembic.config import Config

        config = Config(file_=str(self.ini) if self.ini else None,
                        toml_file=str(self.toml) if self.toml else None, **kwargs)
        if self.script_location is not None and not config.get_alembic_option("script_location"):
            config.set_main_option("script_location", str(self.script_location))
        return config


def layout_at(path: Path) -> AlembicLayout | None:
    """The Alembic layout at `path` (a folder, an alembic.ini or a pyproject.toml), or None."""
    if path.is_file():
        if path.name == "pyproject.toml":
            return _from_config(None, path, required=True)
        if path.suffix == ".ini":
            return _from_config(path, _toml_beside(path), required=True)
        return None
    ini = path / "alembic.ini"
    toml = _toml_beside(path / "alembic.ini")
    if ini.is_file() or toml is not None:
        layout = _from_config(ini if ini.is_file() else None, toml, required=False)
        if layout is not None:
            return layout
    if (path / "env.py").is_file() and (path / "versions").is_dir():
        return _script_folder(path, ini if ini.is_file() else None, None, ())
    if ini.is_file():
        raise BadInput(f"lint: {ini}: no script_location in [alembic], and {path} has no "
                       "env.py with a versions/ folder (Flask-Migrate's layout)")
    if any(not p.name.startswith(("_", ".")) for p in path.glob("*.py")):
        return AlembicLayout(versions=(path,))
    return None


def _toml_beside(ini: Path) -> Path | None:
    toml = ini.parent / "pyproject.toml"
    if not toml.is_file():
        return None
    try:
        data = tomllib.loads(toml.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
        return None
    return toml if isinstance(data.get("tool", {}).get("alembic"), dict) else None


def _from_config(ini: Path | None, toml: Path | None, *, required: bool) -> AlembicLayout | None:
    where = ini or toml
    assert where is not None
    from alembic.config import Config
    from alembic.util import CommandError

    try:
        config = Config(file_=str(ini) if ini else None, toml_file=str(toml) if toml else None)
        location = config.get_alembic_option("script_location")
        version_locations = config.get_version_locations_list() or []
        sys_paths = config.get_prepend_sys_paths_list() or []
    except CommandError:
        location, version_locations, sys_paths = None, [], []
    except (configparser.Error, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise BadInput(f"lint: {where}: not a readable Alembic config ({exc})") from None
    if not location:
        if required and ini is not None and (ini.parent / "env.py").is_file() \
                and (ini.parent / "versions").is_dir():
            return _script_folder(ini.parent, ini, toml, ())  # Flask-Migrate
        if required:
            raise BadInput(f"lint: {where}: no script_location in [alembic] or [tool.alembic]")
        return None
    folder = _resolve(location, where)
    base = where.parent
    paths = tuple(str(p if Path(p).is_absolute() else (base / p).resolve()) for p in sys_paths)
    versions = tuple(_resolve(v, where) for v in version_locations) or (folder / "versions",)
    for v in versions:
        if not v.is_dir():
            raise BadInput(f"lint: {where}: no versions directory at {v}")
    env_py = folder / "env.py"
    return AlembicLayout(versions, folder, env_py if env_py.is_file() else None, ini, toml, paths)


def _resolve(location: str, where: Path) -> Path:
    if ":" in location and not Path(location).is_absolute() and not Path(location).exists():
        from alembic.util import coerce_resource_to_filename

        try:
            return Path(coerce_resource_to_filename(location))
        except (ImportError, ValueError, TypeError) as exc:
            raise BadInput(f"lint: {where}: script_location {location!r} is a package resource "
                           f"that cannot be found ({exc})") from None
    folder = Path(location)
    return folder if folder.is_absolute() else where.parent / folder


def _script_folder(folder: Path, ini: Path | None, toml: Path | None,
                   sys_paths: tuple[str, ...]) -> AlembicLayout:
    env_py = folder / "env.py"
    return AlembicLayout((folder / "versions",), folder, env_py if env_py.is_file() else None,
                         ini, toml, sys_paths)
