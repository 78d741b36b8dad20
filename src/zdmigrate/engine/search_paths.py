"""Which search_path each app version needs while renames through views are in flight.

A migration that renames with ``mode="view"`` has a version schema
(``zdm_<revision>``) from expand until contract; an app version at or above its
compat ``read_new_from`` (else ``old_unused_from``) for that app puts the schema
first on its search_path. Several migrations in flight stack, newest first. The
same answer the runtime computes from the catalog, here from the migration files
and their phases (for `status`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from packaging.version import InvalidVersion, Version

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
    """The libpq option that sets it without the runtime: ``-csearch_path=zdm_0002,public``."""
    return "-csearch_path=" + ",".join([*path, base])
