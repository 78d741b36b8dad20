"""An Alembic history zdmigrate has not adopted yet: detect it before anything runs twice.

A database that Alembic migrated has an ``alembic_version`` row. If zdmigrate
has no record of any migration there, every revision up to that row would look
pending, and ``phase advance`` would run the history again. So commands that
change the schema refuse (exit 2) and say ``zdmigrate adopt``; ``status`` says it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from zdmigrate import state
from zdmigrate.errors import BadInput, Blocker
from zdmigrate.migration import Migration


class NotAdopted(BadInput):
    """The database has an Alembic history that zdmigrate has not taken as its baseline."""


def alembic_revision(conn: psycopg.Connection[Any]) -> str | None:
    """The revision in ``alembic_version`` (on the search_path), or None."""
    row = conn.execute("SELECT to_regclass('alembic_version')::text").fetchone()
    if not row or row[0] is None:
        return None
    rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    return str(rows[0][0]) if len(rows) == 1 else None


def not_adopted(
    conn: psycopg.Connection[Any], schema: str, migrations: Sequence[Migration]
) -> NotAdopted | None:
    """Why this database needs `zdmigrate adopt` first, or None when it does not."""
    revision = alembic_revision(conn)
    if revision is None:
        return None
    if state.schema_exists(conn, schema) and state.load_migrations(conn, schema):
        return None
    known = {m.id for m in migrations}
    if revision not in known:
        return NotAdopted(
            f"this database was migrated by Alembic up to {revision}, which is not among the "
            f"{len(known)} migration(s) in the migrations directory",
            hint="point --migrations (or ZDMIGRATE_MIGRATIONS) at the Alembic versions "
            "directory, then run `zdmigrate adopt`",
        )
    return NotAdopted(
        f"this database was migrated by Alembic up to {revision}, and zdmigrate has no record "
        "of it: running the migrations now would run that history again",
        hint=f"run `zdmigrate adopt` to take the history up to {revision} as the baseline",
    )


def not_adopted_blocker(error: NotAdopted) -> Blocker:
    return Blocker("not-adopted", f"{error} ({error.hint})" if error.hint else str(error))
