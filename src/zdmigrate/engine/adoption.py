"""An Alembic history zdmigrate has not adopted yet: detect it before anything runs twice.

A database that Alembic migrated has an ``alembic_version`` row. If zdmigrate
has no record of any migration there, every revision up to that row would look
pending, and ``phase advance`` would run the history again. So commands that
change the schema refuse (exit 2) and say ``zdmigrate adopt``; ``status`` says it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from zdmigrate.errors import BadInput, Blocker
from zdmigrate.migration import Migration
from zdmigrate.state import Store


class NotAdopted(BadInput):
    """The database has an Alembic history that zdmigrate has not taken as its baseline."""


def alembic_versions(conn: psycopg.Connection[Any]) -> list[str] | None:
    """The rows of ``alembic_version`` (on the search_path); None when there is no such table."""
    row = conn.execute("SELECT to_regclass('alembic_version')::text").fetchone()
    if not row or row[0] is None:
        return None
    return [str(r[0]) for r in conn.execute("SELECT version_num FROM alembic_version")]


def alembic_revision(conn: psycopg.Connection[Any]) -> str | None:
    """The one revision in ``alembic_version``, or None (no table, no row, several heads)."""
    versions = alembic_versions(conn)
    return versions[0] if versions and len(versions) == 1 else None


def move_alembic_version(
    conn: psycopg.Connection[Any], migrations: Sequence[Migration], complete: Callable[[str], bool]
) -> str | None:
    """Keep ``alembic_version`` with zdmigrate: point it at the newest complete migration.

    Only where the table exists (a project that runs Alembic too) and names one
    of the complete migrations at the start of the history, so `alembic upgrade
    head` on this database skips what zdmigrate finished. Runs in the caller's
    transaction (the one that records the contract). Returns the new revision.
    """
    current = alembic_revision(conn)
    if current is None:
        return None
    done: list[str] = []
    for migration in migrations:
        if not complete(migration.id):
            break
        done.append(migration.id)
    if current not in done or done[-1] == current:
        return None
    conn.execute("UPDATE alembic_version SET version_num = %s WHERE version_num = %s",
                 [done[-1], current])
    return done[-1]


def not_adopted(
    conn: psycopg.Connection[Any], schema: str, migrations: Sequence[Migration]
) -> NotAdopted | None:
    """Why this database needs `zdmigrate adopt` first, or None when it does not."""
    revision = alembic_revision(conn)
    if revision is None:
        return None
    store = Store(conn, schema)
    if store.exists() and store.migrations.load():
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
    return Blocker("not-adopted", f"{error.message}: {error.hint}" if error.hint else error.message)
