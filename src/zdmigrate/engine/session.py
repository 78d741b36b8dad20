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
from zdmigrate.errors import BadInput, MigrationChanged, RunLocked, first_line
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
    #: Whether zdmigrate's schema is in place and this run recorded as the lock holder.
    state_ready: bool = True
    command: str = ""

    def ensure_state(self) -> None:
        """Create (or upgrade) zdmigrate's schema and record this run as the lock holder.

        A session opened with ``defer_state=True`` calls this before its first write,
        so input found bad after connecting (exit 2) leaves the database untouched.
        """
        if self.state_ready:
            return
        state.ensure_schema(self.conn, self.schema)
        state.record_lock_holder(self.conn, self.schema, actor=self.actor, command=self.command)
        self.state_ready = True

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
    migrations: list[Migration] | None = None, defer_state: bool = False,
) -> Iterator[Run]:
    """Load the migrations (bad files fail here, before any connection), connect, lock.

    With `defer_state`, a locked session creates zdmigrate's schema only when the
    command calls `Run.ensure_state` (when it exists already, it is upgraded at once).
    A role that may not read zdmigrate's schema is bad input (exit 2), said plainly.
    """
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
        run = Run(conn, settings, migrations, {}, actor, log, command=command)
        if lock:
            holder = state.try_run_lock(conn, settings.state_schema)
            if holder is not None:
                raise RunLocked(
                    f"another zdmigrate run holds the lock on this database: {holder.describe()}",
                    hint=_lock_hint(holder),
                )
            run.state_ready = False
            if not defer_state or state.schema_exists(conn, settings.state_schema):
                run.ensure_state()
        if state.schema_exists(conn, settings.state_schema):
            run.reload()
        try:
            yield run
        finally:
            if lock and not conn.closed and not conn.broken:
                state.release_run_lock(conn, settings.state_schema)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise StatePrivilegeMissing(
            f"the database role may not use zdmigrate's schema {settings.state_schema!r}: "
            f"{first_line(exc)}",
            hint="run zdmigrate as the role that owns that schema (see docs/security.md), "
            "or grant this role what it lacks",
        ) from None
    finally:
        conn.close()


def _lock_hint(holder: state.LockHolder) -> str:
    """What the holder is doing, and the truth about a killed run: PostgreSQL notices its
    client is gone only when the running statement ends, and only then is the lock freed."""
    if holder.pid is None:
        return "run again in a moment"
    if holder.backend_state == "active" and holder.statement:
        running = (f" for {holder.statement_seconds:.0f}s" if holder.statement_seconds is not None
                   else "")
        flat = " ".join(holder.statement.split())
        shown = flat if len(flat) <= 80 else flat[:77] + "..."
        return (
            f"its backend (pid {holder.pid}) has been running `{shown}`{running}; if that run "
            "was killed, PostgreSQL 14+ ends the statement within seconds (zdmigrate has its "
            "backend check that its client is still there); on older servers the lock is "
            "freed only when this statement ends (it is bounded by lock_timeout / "
            "statement_timeout, or not at all for CONCURRENTLY builds); if that run was not "
            f"killed but is stuck, end the statement with SELECT pg_cancel_backend({holder.pid})"
        )
    return (f"wait for it to finish; if that run was killed, its backend (pid {holder.pid}) "
            "frees the lock as soon as PostgreSQL notices the closed connection")


class StatePrivilegeMissing(BadInput):
    """The connected role lacks a privilege on zdmigrate's own schema (exit 2)."""


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
