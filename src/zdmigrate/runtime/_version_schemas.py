"""Which version schemas an app version needs on its search_path, read from the catalog.

A rename in view mode (``RenameColumn(..., mode="view")``) creates at expand a
schema ``zdm_<revision>`` whose comment is JSON:
``{"zdmigrate_version_schema": "<revision>", "read_new_from": {"<app>": "<version>"}}``
(from the migration's compat). An app version at or above ``read_new_from``
uses the new names, so it puts the schema first on its search_path. Newer
migrations come first, so several migrations in flight stack in order. After
contract the schema is gone and is no longer listed; a session that still names
it is unharmed (PostgreSQL skips a search_path entry that does not exist).

This reads pg_namespace, not zdmigrate's state schema: it works with any role
that can connect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import psycopg

MARKER_KEY = "zdmigrate_version_schema"  # as zdmigrate.ops._version_schema (a test checks)

_QUERY = (
    "SELECT n.nspname, obj_description(n.oid, 'pg_namespace') FROM pg_catalog.pg_namespace n "
    "WHERE n.nspname LIKE 'zdm\\_%' ORDER BY n.oid DESC"
)


@dataclass(frozen=True)
class VersionSchema:
    """One migration's version schema, as its comment describes it."""

    name: str
    migration: str
    read_new_from: dict[str, str] = field(default_factory=dict)

    def needed_by(self, app: str, version: str) -> bool:
        """Does `version` of `app` use the new names (compat's read_new_from)?"""
        first = self.read_new_from.get(app)
        return first is not None and _at_least(version, first)


def load(conn: psycopg.Connection[Any]) -> list[VersionSchema]:
    """Every version schema in the database, newest first."""
    out = []
    for name, comment in conn.execute(_QUERY).fetchall():
        parsed = parse_comment(name, comment)
        if parsed is not None:
            out.append(parsed)
    return out


def current_search_path(conn: psycopg.Connection[Any]) -> str | None:
    """The connection's search_path, as ``SHOW search_path`` prints it."""
    row = conn.execute("SHOW search_path").fetchone()
    return str(row[0]) if row else None


def parse_comment(name: str, comment: str | None) -> VersionSchema | None:
    try:
        data = json.loads(comment or "")
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get(MARKER_KEY), str):
        return None
    read_new = data.get("read_new_from")
    read_new = read_new if isinstance(read_new, dict) else {}
    return VersionSchema(name, data[MARKER_KEY],
                         {str(k): str(v) for k, v in read_new.items()})


def search_path_for(schemas: list[VersionSchema], app: str, version: str) -> list[str]:
    """The version schemas `version` of `app` puts first on its search_path, in order."""
    return [s.name for s in schemas if s.needed_by(app, version)]


def _at_least(version: str, first: str) -> bool:
    # packaging only here, on first use (not at import): the runtime stays light
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) >= Version(first)
    except InvalidVersion:
        return False
