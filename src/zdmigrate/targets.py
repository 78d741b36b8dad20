"""Targets: the databases one migration moves through in step (shards, cells, tenant databases).

Four sources, all optional, merged in this order (a name may appear only once):

- ``[tool.zdmigrate.targets]`` in pyproject.toml: a table of ``name = "URL"``;
- ``targets_file`` (env ``ZDMIGRATE_TARGETS_FILE``): one ``name URL`` a line, ``#`` comments;
- ``targets_command`` (env ``ZDMIGRATE_TARGETS_COMMAND``): a command (run by ``/bin/sh -c``)
  whose standard output is such lines, for fleets that change;
- ``targets_query`` (env ``ZDMIGRATE_TARGETS_QUERY``): SQL run against
  ``targets_catalog_url`` (default: the database URL), returning ``(name, url)`` rows.

No target configured means one database, the database URL, exactly as before.
`each_target` runs work on every target, a bounded number at once, a failure of
one never stopping the others.

    targets = load_targets(settings, ["shard-0*"])
    [t.name for t in targets]      # ['shard-01', 'shard-02']
    targets[0].shown               # 'postgresql://app@db1/shop' (never the password)

Warning: a URL may hold a password, but it is never printed: messages show
`Target.shown` (`zdmigrate.dsn.redact`). Better still, keep passwords out of the
URLs: libpq reads ``PGPASSWORD``, a ``passfile`` (``~/.pgpass``) and ``service=``
entries of ``pg_service.conf`` by itself.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from zdmigrate import dsn
from zdmigrate.config import Settings
from zdmigrate.errors import (
    ConfigError,
    DatabaseUnreachable,
    OperationalError,
    ZdmigrateError,
    first_line,
)

#: A target's name: letters, digits and ``. _ - : @ +``, starting with a letter or digit
#: (no glob characters, so a selector is either a name or a pattern).
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,99}$")
_GLOB_CHARS = set("*?[")
#: How long a targets command may run before it counts as failed, seconds.
COMMAND_TIMEOUT = 60.0


@dataclass(frozen=True)
class Target:
    """One database of the set: its name and URL (never print `url`: print `shown`)."""

    name: str
    url: str = field(repr=False)
    #: Where it was configured (``targets.txt:3``), for messages.
    source: str = field(default="", compare=False)

    @property
    def shown(self) -> str:
        """The URL without its password: safe to print."""
        return dsn.redact(self.url)

    def settings(self, base: Settings) -> Settings:
        """`base` pointed at this target's database."""
        return base.with_(database_url=self.url)

    def __repr__(self) -> str:
        return f"Target({self.name!r}, {self.shown!r})"


def load_targets(settings: Settings, selectors: Sequence[str] = ()) -> list[Target]:
    """The configured targets that `selectors` pick (exact names or globs), in config order.

    No selectors: every target. No target configured: ``[]`` (one database, the
    database URL), unless selectors were given, which is bad input. Raises
    ConfigError (exit 2) naming the source and line of a duplicate name, a bad
    name or URL, a failing command, or a selector that picks nothing; the
    catalog database of ``targets_query`` unreachable is DatabaseUnreachable (exit 3).
    """
    found = configured_targets(settings)
    if not found:
        if selectors:
            raise ConfigError(
                f"--target {selectors[0]} given, but no targets are configured",
                hint="configure [tool.zdmigrate.targets], targets_file, targets_command or "
                "targets_query (see docs/many-databases.md)",
            )
        return []
    return select(found, selectors)


def configured_targets(settings: Settings) -> list[Target]:
    """Every target of every configured source, checked (names unique, URLs usable)."""
    entries: list[Target] = []
    table = settings.extra.get("targets")
    if table is not None:
        entries.extend(_from_table(table, settings.config_file))
    if settings.targets_file is not None:
        entries.extend(_from_file(Path(settings.targets_file)))
    if settings.targets_command:
        entries.extend(_from_command(settings.targets_command))
    if settings.targets_query:
        entries.extend(_from_query(settings))
    _check_unique(entries)
    return entries


def select(targets: Sequence[Target], selectors: Sequence[str]) -> list[Target]:
    """The targets each selector names (exact) or matches (glob), in the targets' order."""
    if not selectors:
        return list(targets)
    names = [t.name for t in targets]
    picked: set[str] = set()
    for selector in selectors:
        selector = selector.strip()
        if not selector:
            raise ConfigError("--target needs a name or a glob, e.g. --target 'shard-*'")
        if _GLOB_CHARS & set(selector):
            matched = [n for n in names if fnmatch.fnmatchcase(n, selector)]
            if not matched:
                raise ConfigError(f"--target {selector!r} selects no target",
                                  hint="targets: " + _some(names))
        elif selector in names:
            matched = [selector]
        else:
            raise ConfigError(f"--target {selector}: no target has that name",
                              hint="targets: " + _some(names))
        picked.update(matched)
    return [t for t in targets if t.name in picked]


def parse_lines(text: str, source: str, where: str = "{source}:{line}") -> list[Target]:
    """Targets from ``name URL`` lines (blank lines and ``#`` comments skipped).

    `source` names where the text came from, for messages (``targets.txt``);
    `where` spells a line of it.
    """
    out: list[Target] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw).strip()
        if not line:
            continue
        place = where.format(source=source, line=number)
        parts = line.split(None, 1)
        if len(parts) < 2:
            raise ConfigError(f"{place}: expected `name URL`, found only {_safe_word(parts[0])}",
                              hint="one target a line: shard-01 postgresql://app@db1/shop")
        out.append(_target(parts[0], parts[1].strip(), place))
    return out


def _strip_comment(line: str) -> str:
    """The line without a ``#`` comment: a whole-line one, or one after whitespace."""
    if line.lstrip().startswith("#"):
        return ""
    return re.split(r"\s#", line, maxsplit=1)[0]


def _target(name: Any, url: Any, where: str) -> Target:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(
            f"{where}: target name {_safe_word(str(name))} is not a valid name",
            hint="letters, digits and . _ - : @ +, starting with a letter or digit "
            "(no glob characters)",
        )
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{where}: target {name} has no URL")
    problem = dsn.problem(url)
    if problem is not None:
        raise ConfigError(f"{where}: target {name}: {problem}",
                          hint="e.g. postgresql://app@db1:5432/shop")
    return Target(name, url, where)


def _safe_word(word: str) -> str:
    """A word of a targets line, quoted unless it might be a URL (which may hold a password)."""
    if "://" in word or "=" in word:
        return f"{dsn.redact(word)!r}"
    return repr(word if len(word) <= 60 else word[:57] + "...")


def _from_table(table: Any, config_file: Path | None) -> list[Target]:
    where = f"{config_file or 'pyproject.toml'} [tool.zdmigrate.targets]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of name = \"URL\"")
    return [_target(name, url, f"{where} {name}") for name, url in table.items()]


def _from_file(path: Path) -> list[Target]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"targets_file {path}: cannot read it: {exc.strerror or exc}") from None
    return parse_lines(text, str(path))


def _from_command(command: str) -> list[Target]:
    shown = f"targets_command `{scrub_urls(command)}`"
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", command], capture_output=True, text=True,
            timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL, check=False,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{shown} did not finish within {COMMAND_TIMEOUT:g}s") from None
    except OSError as exc:
        raise ConfigError(f"{shown} could not be started: {exc.strerror or exc}") from None
    if done.returncode != 0:
        said = [line for line in done.stderr.splitlines() if line.strip()]
        raise ConfigError(
            f"{shown} failed (exit {done.returncode})"
            + (f": {scrub_urls(said[-1].strip())}" if said else ""),
            hint="it must print one `name URL` a line and exit 0",
        )
    return parse_lines(done.stdout, shown, "{source}, line {line} of its output")


def _from_query(settings: Settings) -> list[Target]:
    from zdmigrate import db  # the catalog is a database: reached only for this source

    url = settings.targets_catalog_url or settings.database_url
    if not url:
        raise ConfigError(
            "targets_query needs a catalog database: set targets_catalog_url "
            "(or the database URL)",
            hint="e.g. targets_catalog_url = \"postgresql://ops@catalog/fleet\"",
        )
    problem = dsn.problem(url)
    if problem is not None:
        raise ConfigError(f"targets_catalog_url: {problem}")
    try:
        conn = db.connect(url, application_name="zdmigrate targets")
    except DatabaseUnreachable as exc:
        raise DatabaseUnreachable(f"targets catalog: {exc.message}",
                                  hint="targets_query runs against targets_catalog_url") from None
    import psycopg

    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute("SELECT set_config('statement_timeout', '30s', true)")
            cursor = conn.execute(settings.targets_query.encode())  # type: ignore[union-attr]
            if cursor.description is None or len(cursor.description) != 2:
                raise ConfigError(
                    "targets_query must return two columns, (name, url); it returns "
                    f"{0 if cursor.description is None else len(cursor.description)}")
            rows = cursor.fetchall()
    except psycopg.Error as exc:
        raise ConfigError(f"targets_query failed on {dsn.redact(url)}: "
                          f"{dsn.scrub(first_line(exc), url)}") from None
    finally:
        conn.close()
    return [_target(name, target_url, f"targets_query row {number}")
            for number, (name, target_url) in enumerate(rows, start=1)]


def _check_unique(targets: Iterable[Target]) -> None:
    names: dict[str, Target] = {}
    urls: dict[str, Target] = {}
    for target in targets:
        if target.name in names:
            raise ConfigError(
                f"{target.source}: target {target.name} is configured twice "
                f"(first at {names[target.name].source})",
                hint="each target needs a name of its own")
        names[target.name] = target
        key = dsn.normalize_url(target.url.strip())
        if key in urls:
            raise ConfigError(
                f"{target.source}: target {target.name} has the same URL as "
                f"{urls[key].name} ({urls[key].source})",
                hint="one database, one target: a phase would run on it twice")
        urls[key] = target


def _some(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KEYWORD_PASSWORD = re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def scrub_urls(text: str) -> str:
    """`text` (a command's message) with any password of a URL or DSN in it replaced by ***."""
    return _KEYWORD_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


T = TypeVar("T")


class NamedTarget(Protocol):
    """What work on each target needs of one (a `Target`, or any object with these)."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...


N = TypeVar("N", bound=NamedTarget)


def each_target(
    targets: Sequence[N], work: Callable[[N], T], *, parallel: int,
    stop: threading.Event | None = None, on_interrupt: Callable[[], None] | None = None,
    raise_first: bool = False,
) -> tuple[dict[str, T], dict[str, ZdmigrateError]]:
    """`work` on every target, at most `parallel` at once: results and failures by name.

    A failure of one target never stops the others: each runs to its end. A
    psycopg error comes back as an `OperationalError` carrying its first line.
    With `raise_first`, for work that makes its own result of every error it
    expects, the first failure (in the order of `targets`) is raised once all are
    over. On Ctrl-C, `stop` is set and `on_interrupt` called (work that watches
    them winds down), targets not started yet are not started, and
    KeyboardInterrupt goes on once all are over.
    """
    import psycopg  # the driver: only for work that connects

    stop = stop or threading.Event()

    def one(target: N) -> tuple[str, T | None, ZdmigrateError | None]:
        if stop.is_set():
            return target.name, None, OperationalError("interrupted before it started")
        try:
            return target.name, work(target), None
        except ZdmigrateError as exc:
            return target.name, None, exc
        except psycopg.Error as exc:
            return target.name, None, OperationalError(first_line(exc))

    results: dict[str, T] = {}
    failures: dict[str, ZdmigrateError] = {}
    if not targets:
        return results, failures
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(targets))),
                            thread_name_prefix="zdmigrate-target") as pool:
        try:
            for name, result, error in pool.map(one, targets):
                if error is not None:
                    failures[name] = error
                else:
                    results[name] = result  # type: ignore[assignment]
        except KeyboardInterrupt:
            stop.set()
            if on_interrupt is not None:
                on_interrupt()
            raise
    if raise_first and failures:
        raise next(iter(failures.values()))  # filled in the targets' order
    return results, failures
