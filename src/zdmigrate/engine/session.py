"""The run session: load the migrations, connect, take the run lock, know each migration's state.

Warning: a session opened with ``lock=True`` holds a session-level advisory lock
on its connection until it closes; one run per database at a time.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from zdmigrate import db, state
from zdmigrate.config import Settings
from zdmigrate.errors import MigrationChanged, RunLocked
from zdmigrate.migration import Migration, find, load_migrations
from zdmigrate.phases import Phase

Log = Callable[[str], None]


def quiet(message: str) -> None:
    """The default log: says nothing."""


def default_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass
class Run:
    """One command's session: its connection, the migrations and their recorded states."""

    conn: psycopg.Connection[Any]
    settings: Settings
    migrations: list[Migration]
    states: dict[str, state.MigrationRow]
    actor: str
    log: Log
    simulated: set[str] = field(default_factory=set)

    @property
    def schema(self) -> str:
        return self.settings.state_schema

    def phase_of(self, migration_id: str) -> Phase:
        row = self.states.get(migration_id)
        return row.phase if row else Phase.PENDING

    def reload(self) -> None:
        self.states = state.load_migrations(self.conn, self.schema)


@contextmanager
def session(
    settings: Settings, command: str, *, lock: bool, log: Log,
    migrations: list[Migration] | None = None,
) -> Iterator[Run]:
    """Load the migrations (bad files fail here, before any connection), connect, lock."""
    if migrations is None:
        migrations = load_migrations(settings.migrations)
    actor = settings.actor or default_actor()
    conn = db.connect(settings, application_name=f"zdmigrate {command}")
    try:
        if command.startswith("phase "):
            from zdmigrate.engine.adoption import not_adopted

            refusal = not_adopted(conn, settings.state_schema, migrations)
            if refusal is not None:
                raise refusal  # before the state schema is created: nothing changed
        if lock:
            holder = state.try_run_lock(conn, settings.state_schema)
            if holder is not None:
                raise RunLocked(
                    f"another zdmigrate run holds the lock on this database: {holder.describe()}",
                    hint="wait for it to finish; a killed run releases the lock at once",
                )
            state.ensure_schema(conn, settings.state_schema)
            state.record_lock_holder(conn, settings.state_schema, actor=actor, command=command)
        states = (
            state.load_migrations(conn, settings.state_schema)
            if state.schema_exists(conn, settings.state_schema) else {}
        )
        run = Run(conn, settings, migrations, states, actor, log)
        try:
            yield run
        finally:
            if lock and not conn.closed and not conn.broken:
                state.release_run_lock(conn, settings.state_schema)
    finally:
        conn.close()


def validated(settings: Settings, migration_id: str | None) -> list[Migration]:
    """Load the migrations and check the arguments before touching the database."""
    migrations = load_migrations(settings.migrations)
    if migration_id is not None:
        find(migrations, migration_id)
    return migrations


def check_unchanged(run: Run, migration: Migration, accept_changed: bool) -> None:
    """Refuse a migration file that changed after its phases started (unless accepted)."""
    row = run.states.get(migration.id)
    if row is None or row.checksum is None or row.checksum == migration.checksum:
        return
    if not accept_changed:
        raise MigrationChanged(
            f"{migration.path}: the file changed after its phases started "
            f"(it is at {row.phase}; checksum {row.checksum[:12]} then, "
            f"{migration.checksum[:12]} now)",
            hint="revert the change (write a new migration instead), or pass --accept-changed "
            "if the change cannot affect what already ran",
        )
    run.log(f"{migration.id}: accepting the changed file (--accept-changed)")
    with run.conn.transaction():
        state.set_checksum(run.conn, run.schema, migration.id, migration.checksum)
