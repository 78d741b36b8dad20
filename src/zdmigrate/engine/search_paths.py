"""Which search_path each app version needs while renames through views are in flight.

A migration that renames with ``mode="view"`` has a version schema
(``zdm_<revision>``) from expand until contract; an app version at or above its
compat ``read_new_from`` (else ``old_unused_from``) for that app puts the schema
first on its search_path. Several migrations in flight stack, newest first. The
same answer the runtime computes from the catalog, here from the migration files
and their phases (for `status`), and the gate's check that live instances of a
version really have it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from packaging.version import InvalidVersion, Version

from zdmigrate.errors import Blocker
from zdmigrate.fleet import Instance
from zdmigrate.migration import Migration
from zdmigrate.ops._version_schema import schema_name
from zdmigrate.phases import Phase


def in_flight(migrations: Sequence[Migration], phase_of: Callable[[str], Phase]) -> list[Migration]:
    """Migrations whose version schema exists now (expand done, contract not), newest first."""
    return [m for m in reversed(migrations)
            if m.uses_version_schema and Phase.EXPAND <= phase_of(m.id) < Phase.CONTRACT]


def search_path(migrations: Sequence[Migration], phase_of: Callable[[str], Phase],
                app: str, version: str) -> list[str]:
    """The version schemas `version` of `app` puts first on its search_path, in order."""
    try:
        parsed = Version(version)
    except InvalidVersion:
        return []
    out = []
    for migration in in_flight(migrations, phase_of):
        first = migration.reads_new_names_from().get(app)
        if first is not None and parsed >= Version(first):
            out.append(schema_name(migration.id))
    return out


def for_versions(migrations: Sequence[Migration], phase_of: Callable[[str], Phase],
                 versions: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
    """`search_path` for each (app, version); versions that need none are left out."""
    out = {}
    for app, version in sorted(set(versions)):
        path = search_path(migrations, phase_of, app, version)
        if path:
            out[(app, version)] = path
    return out


def dsn_option(path: Sequence[str], base: str = "public") -> str:
    """The libpq option that sets it without the runtime: ``-csearch_path=zdm_0002,public``.

    A name that PostgreSQL would fold to lower case (or that is not a plain
    identifier) is double-quoted.
    """
    return "-csearch_path=" + ",".join([*(_quoted(n) for n in path), base])


def _quoted(name: str) -> str:
    return name if _PLAIN.match(name) else '"' + name.replace('"', '""') + '"'


_PLAIN = re.compile(r"^[a-z_][a-z0-9_$]*$")


CHECK_SEARCH_PATH = "gate-search-path"


def _schemas_in(search_path_text: str) -> set[str]:
    """The names in a ``SHOW search_path`` value (``"zdm_0002", public``)."""
    return {part.strip().strip('"') for part in search_path_text.split(",")}


def gate_blockers(migrations: Sequence[Migration], phase_of: Callable[[str], Phase],
                  app: str, version: str, instances: Iterable[Instance]) -> list[Blocker]:
    """`zdmigrate gate`: refuse `version` of `app` while live instances of that very
    version report (through the runtime's heartbeat) connections without the version
    schemas it needs and no `use_search_path`. Instances that report nothing (no
    runtime, an older runtime) are not judged: nothing is known of their connections.
    """
    needed = search_path(migrations, phase_of, app, version)
    if not needed:
        return []
    wanted = Version(version)
    out = []
    for instance in instances:
        if instance.app != app or instance.parsed_version != wanted:
            continue
        reported = instance.info.get("search_path")
        if not isinstance(reported, dict) or reported.get("source") == "use_search_path":
            continue
        connection = str(reported.get("connection") or "")
        missing = [s for s in needed if s not in _schemas_in(connection)]
        if not missing:
            continue
        out.append(Blocker(
            CHECK_SEARCH_PATH,
            f"{app} {version} reads new names through the version schema(s) "
            f"{', '.join(missing)}, but {instance.describe()} reports connections with "
            f"search_path {connection!r} and no use_search_path: add "
            f"options={dsn_option(needed)} to its database URL, or call "
            "zdmigrate.runtime.sqla.use_search_path(engine, runtime)",
            {"app": app, "version": version, "instance_id": instance.instance_id,
             "needed": needed, "connection_search_path": connection},
        ))
    return out
