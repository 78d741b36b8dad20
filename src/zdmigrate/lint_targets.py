"""What `zdmigrate lint` reads: .sql files, stdin, migration directories, Alembic projects, globs.

Python migrations are loaded with `zdmigrate.migration` (and so Alembic) only
when a path actually holds Python files; a run over .sql files and stdin never
imports SQLAlchemy or Alembic.

A directory is read the way Alembic reads a project (`_alembic_layout`):
``alembic.ini`` (its ``script_location``, ``version_locations``,
``prepend_sys_path``), ``[tool.alembic]`` in ``pyproject.toml``, Flask-Migrate's
``migrations/`` (env.py, versions/ and an alembic.ini without
``script_location``), a folder with ``env.py`` and ``versions/``; else its
``*.py`` files are revisions and its ``*.sql`` files are SQL, linted in name
order.

Revisions are ordered from their ``revision``/``down_revision`` read without
importing them (Python's ast), so ``--since REV`` imports only the revisions
it selects. A revision that cannot be imported is one ``revision-not-linted``
violation (`problems`) and every other file is still linted. Whatever a
revision prints goes to stderr: stdout holds only the report.
"""

from __future__ import annotations

import ast
import contextlib
import glob
import importlib
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from zdmigrate.errors import BadInput, MigrationFileError

if TYPE_CHECKING:
    from zdmigrate._alembic_layout import AlembicLayout

_GLOB_CHARS = set("*?[")


@dataclass
class LintTargets:
    """SQL texts (path, text), loaded migrations and unloadable revisions, in lint order."""

    sql: list[tuple[str, str]] = field(default_factory=list)
    migrations: list[Any] = field(default_factory=list)  # zdmigrate.migration.Migration
    #: ``revision-not-linted`` violations for revisions that could not be loaded
    problems: list[Any] = field(default_factory=list)  # zdmigrate.lint.Violation
    #: migration path -> the Alembic MigrationContext its project's env.py configured (--env)
    env_contexts: dict[str, Any] = field(default_factory=dict)
    #: folders whose frames are not call sites (installed packages, preloaded plugins)
    library_folders: tuple[str, ...] = ()

    @property
    def files(self) -> int:
        return len(self.sql) + len(self.migrations) + len({v.path for v in self.problems})


@dataclass
class _Revision:
    """A revision file found on disk, with its ids once read (None until then)."""

    path: Path
    layout: AlembicLayout | None
    revision: str | None = None
    down: tuple[str, ...] = ()


def collect(
    paths: Sequence[str], *, default_dir: Path, stdin: TextIO | None = None,
    since: str | None = None, config: Any = None, env: bool = False,
) -> LintTargets:
    """Resolve CLI paths into what to lint; a missing path is BadInput (exit 2).

    `config` is the LintConfig (its ``preload`` modules are imported before any
    revision); `env` runs each project's env.py offline first (``--env``).
    """
    targets = LintTargets()
    seen_sql: set[str] = set()
    revisions: dict[str, _Revision] = {}
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
        for revision_path, layout in _revision_files_at(path):
            revisions.setdefault(str(revision_path.resolve()), _Revision(revision_path, layout))
        for sql_path in _sql_files_at(path):
            key = str(sql_path)
            if key not in seen_sql:
                seen_sql.add(key)
                targets.sql.append((raw if path.is_file() else str(sql_path), _read(sql_path)))
    found_since = False
    if since is not None:
        found_since = _skip_sql_until(targets, since)
    if revisions:
        found_since = _load_revisions(targets, list(revisions.values()), since=since,
                                      config=config, env=env) or found_since
    if since is not None and not found_since:
        raise BadInput(
            f"lint: --since {since!r} is not a revision (or .sql file name) among the linted paths"
        )
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
        if path.suffix.lower() == ".py" or path.name in ("alembic.ini", "pyproject.toml"):
            return []
        return [path]
    return sorted(p for p in path.glob("*.sql") if p.is_file())


def _revision_files_at(path: Path) -> list[tuple[Path, AlembicLayout | None]]:
    if path.is_file() and path.suffix == ".py":
        return [(path, None)]
    from zdmigrate._alembic_layout import layout_at

    layout = layout_at(path)
    if layout is None:
        return []
    return [(p, layout) for folder in layout.versions for p in _python_files(folder)]


def _python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith(("_", ".")))


# -- revisions: headers without importing, order, --since, then import -------------


def read_header(path: Path) -> tuple[str, tuple[str, ...]] | None:
    """``revision`` and ``down_revision`` of a revision file, read without importing it.

    None when they are not plain literals (then the file must be imported to know).
    """
    try:
        source = path.read_bytes()
    except OSError:
        return None
    quick = _quick_header(source)
    if quick is not None:
        return quick
    try:
        tree = ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return None
    values: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                return None
    revision, down = values.get("revision"), values.get("down_revision", ...)
    if not isinstance(revision, str) or not revision or down is ...:
        return None
    if down is None:
        return revision, ()
    if isinstance(down, str):
        return revision, (down,)
    if isinstance(down, (tuple, list)) and all(isinstance(d, str) for d in down):
        return revision, tuple(down)
    return None


_HEADER = re.compile(
    rb"^(revision|down_revision)(?:[ \t]*:[^=\n]*)?[ \t]*=[ \t]*"
    rb"(None|'[^'\\\n]*'|\"[^\"\\\n]*\")[ \t]*(?:#[^\n]*)?$", re.M)


def _quick_header(source: bytes) -> tuple[str, tuple[str, ...]] | None:
    """The common case, ``revision = "abc"`` and a string or None down_revision, by a regex.

    Anything else (tuples, expressions, a name assigned twice) falls back to ast.
    """
    found: dict[bytes, bytes] = {}
    for m in _HEADER.finditer(source):
        if m.group(1) in found:
            return None
        found[m.group(1)] = m.group(2)
    if set(found) != {b"revision", b"down_revision"} or found[b"revision"] == b"None":
        return None
    revision = found[b"revision"][1:-1].decode("utf-8", "replace")
    down = found[b"down_revision"]
    if not revision:
        return None
    return revision, () if down == b"None" else (down[1:-1].decode("utf-8", "replace"),)


def _ordered(revisions: list[_Revision]) -> list[_Revision]:
    """Alembic's order (base first) when the graph allows it, else file name order."""
    known = [r for r in revisions if r.revision is not None]
    by_id = {r.revision: r for r in known}
    if len(by_id) != len(known) or any(d not in by_id for r in known for d in r.down):
        return sorted(revisions, key=lambda r: r.path.name)
    from alembic.script.revision import Revision, RevisionError, RevisionMap

    try:
        nodes = [Revision(str(r.revision), r.down[0] if len(r.down) == 1 else (r.down or None))
                 for r in known]
        revision_map = RevisionMap(lambda: nodes)
        order = [by_id[node.revision]
                 for node in reversed(list(revision_map.iterate_revisions(revision_map.heads, "base")))]
    except RevisionError:
        return sorted(revisions, key=lambda r: r.path.name)
    unknown = sorted((r for r in revisions if r.revision is None), key=lambda r: r.path.name)
    return order + unknown


def _after(revisions: list[_Revision], since: str) -> tuple[list[_Revision], bool]:
    """The revisions that are not `since` nor one of its ancestors (grandfathered history)."""
    ids = [r.revision for r in revisions if r.revision]
    match = since if since in ids else next(
        (i for i in ids if i.startswith(since) and sum(j.startswith(since) for j in ids) == 1), None)
    if match is None:
        return revisions, False
    by_id = {r.revision: r for r in revisions if r.revision}
    old: set[str] = set()
    stack = [match]
    while stack:
        current = stack.pop()
        if current in old or current not in by_id:
            continue
        old.add(current)
        stack.extend(by_id[current].down)
    return [r for r in revisions if r.revision not in old], True


def _load_revisions(targets: LintTargets, revisions: list[_Revision], *, since: str | None,
                    config: Any, env: bool) -> bool:
    from zdmigrate import _lint_render

    for r in revisions:
        header = read_header(r.path)
        if header is not None:
            r.revision, r.down = header
    ordered = _ordered(revisions)
    found = False
    if since is not None:
        if any(r.revision is None for r in ordered):
            _identify_by_import(ordered)
            ordered = _ordered(ordered)
        ordered, found = _after(ordered, since)
    preload: tuple[str, ...] = tuple(getattr(config, "preload", ()) or ())
    _prepend_project_paths({r.layout for r in ordered if r.layout is not None})
    with _stdout_to_stderr():
        for name in preload:
            _preload(name)
        contexts: dict[AlembicLayout, Any] = {}
        if env:
            for layout in dict.fromkeys(r.layout for r in ordered if r.layout is not None):
                if layout.env_py is None:
                    continue
                context = _run_env(layout, targets)
                if context is not None:
                    contexts[layout] = context
        targets.library_folders = _lint_render.third_party_folders(preload)
        seen: dict[str, Path] = {}
        for r in ordered:
            migration = _load_one(r.path, targets, config)
            if migration is None:
                continue
            if migration.id in seen:
                _problem(targets, MigrationFileError(
                    f"revision {migration.id!r} is also declared in {seen[migration.id].name}",
                    path=str(r.path), line=1), r.path, config)
                continue
            seen[migration.id] = r.path
            targets.migrations.append(migration)
            if r.layout in contexts:
                targets.env_contexts[str(migration.path)] = contexts[r.layout]
    return found


def _identify_by_import(revisions: list[_Revision]) -> None:
    """Revisions whose header is not a plain literal: import them to learn their ids."""
    from zdmigrate.migration import load_file

    for r in revisions:
        if r.revision is None:
            with contextlib.suppress(MigrationFileError), _stdout_to_stderr():
                migration = load_file(r.path)
                r.revision, r.down = migration.id, migration.down_revisions


def _load_one(path: Path, targets: LintTargets, config: Any) -> Any:
    from zdmigrate.migration import load_file

    try:
        return load_file(path)
    except MigrationFileError as exc:
        _problem(targets, exc, path, config)
    except SystemExit as exc:  # a revision that exits when imported outside its app
        _problem(targets, MigrationFileError(f"importing it called exit({exc.code})",
                                             path=str(path), line=None), path, config)
    return None


def _problem(targets: LintTargets, exc: Exception, path: Path, config: Any) -> None:
    from zdmigrate.lint._runner import lint_unloadable

    targets.problems.extend(lint_unloadable(str(path.resolve()), exc, config=config))


def _preload(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception as exc:
        raise BadInput(
            f"lint: [tool.zdmigrate.lint] preload: importing {name!r} raised "
            f"{type(exc).__name__}: {exc}",
            hint="install it in this environment or set PYTHONPATH",
        ) from None


def _run_env(layout: AlembicLayout, targets: LintTargets) -> Any:
    """Run the project's env.py offline (as ``alembic upgrade --sql`` does); its context, or None.

    env.py configures the context (dialect, options) and imports what the
    revisions need (Alembic plugins register their ops on import). No revision
    runs here: lint renders each one itself. A failure is one revision-not-linted
    violation at env.py's failing line; the revisions are then linted without it.
    """
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    from zdmigrate import _lint_render
    from zdmigrate.context import statement_buffer
    from zdmigrate.steps import caller_source

    env_py = layout.env_py
    assert env_py is not None
    buffer = statement_buffer(lambda step: None)
    try:
        config = layout.alembic_config(output_buffer=buffer)
        if not config.get_main_option("sqlalchemy.url"):
            config.set_main_option("sqlalchemy.url", "postgresql://")
        script = ScriptDirectory.from_config(config)
        with EnvironmentContext(config, script, fn=lambda rev, context: [], as_sql=True,
                                starting_rev=None, destination_rev="heads", tag=None) as env_context:
            script.run_env()
            context = env_context.get_context()
    except Exception as exc:
        from zdmigrate.migration import _line_in_file

        _problem(targets, MigrationFileError(
            f"env.py raised {type(exc).__name__}: {exc}", path=str(env_py.resolve()),
            line=_line_in_file(exc, env_py)), env_py, None)
        return None
    if getattr(context, "dialect", None) is None or context.dialect.name != "postgresql":
        _problem(targets, MigrationFileError(
            f"env.py configured the {context.dialect.name} dialect; zdmigrate lints PostgreSQL",
            path=str(env_py.resolve()), line=None), env_py, None)
        return None
    context.output_buffer = buffer
    _lint_render.install(context, lambda event: buffer.sink(event), caller_source)
    return context


def _prepend_project_paths(layouts: set[AlembicLayout]) -> None:
    """Alembic's ``prepend_sys_path`` entries on sys.path, as Alembic puts them there.

    They stay for the rest of the run: a revision may import lazily, inside upgrade().
    """
    extra = list(dict.fromkeys(p for layout in layouts for p in layout.sys_paths
                               if p not in sys.path))
    sys.path[:0] = extra


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Whatever revisions and env.py print goes to stderr: stdout holds only the report."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _skip_sql_until(targets: LintTargets, since: str) -> bool:
    """Drop .sql files up to and including the one named `since` (grandfathering)."""
    names = [Path(p).stem for p, _ in targets.sql]
    for i, name in enumerate(names):
        if name == since or name.startswith(since):
            targets.sql = targets.sql[i + 1 :]
            return True
    return False


# -- linting what was collected ------------------------------------------------------


def lint_collected(
    targets: LintTargets, *, phase: Any, pg_version: int, config: Any,
    catalog_types: dict[tuple[str, str], str] | None = None,
) -> list[Any]:
    """Lint every collected target; revisions never stop the run (one violation each at worst).

    Column types carry from revision to revision (a later ALTER ... TYPE knows
    the type an earlier CREATE TABLE wrote); `catalog_types` are the live
    database's, for columns no revision declared.
    """
    from zdmigrate.lint import lint_migration, lint_sql
    from zdmigrate.phases import Phase

    found: list[Any] = list(targets.problems)
    known_types: dict[tuple[str, str], Any] = {}
    shared: dict[str, Any] = {}
    with _stdout_to_stderr():
        for path, text in targets.sql:
            found.extend(lint_sql(text, path=path, phase=phase or Phase.EXPAND,
                                  pg_version=pg_version, config=config))
        if targets.migrations:  # only revisions need it (and steps, its dataclasses)
            from zdmigrate import _lint_render
        for migration in targets.migrations:
            mode = _lint_render.LintRendering(targets.library_folders,
                                              targets.env_contexts.get(str(migration.path)),
                                              shared=shared)
            with _lint_render.lint_rendering(mode):
                found.extend(lint_migration(
                    migration, [phase] if phase else None, pg_version=pg_version, config=config,
                    keep_going=True, known_types=known_types, catalog_types=catalog_types,
                    rollbacks=True))
    from zdmigrate.lint._violation import sort_key

    return sorted(found, key=sort_key)


CATALOG_TYPES_SQL = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
"""


def catalog_column_types(conn: Any) -> dict[tuple[str, str], str]:
    """(table, column) -> type (SQL) of every user table column; a name in two schemas with
    two different types is left out (lint cannot know which one a revision means)."""
    out: dict[tuple[str, str], str] = {}
    clashes: set[tuple[str, str]] = set()
    for table, column, type_sql in conn.execute(CATALOG_TYPES_SQL):
        key = (str(table).lower(), str(column))
        if key in out and out[key] != type_sql:
            clashes.add(key)
        out[key] = str(type_sql)
    for key in clashes:
        del out[key]
    return out
