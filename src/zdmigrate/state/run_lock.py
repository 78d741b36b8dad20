"""The ``run_lock`` table and its advisory lock: one zdmigrate run per database at a time.

The lock itself is a session-level advisory lock; the table only says who
holds it and since when, for the error a second run shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from zdmigrate.state.schema import schema_exists, table

_RUN_LOCK_KEY = 0x7A646E  # "zdn": session advisory lock, one run per database


@dataclass(frozen=True)
class LockHolder:
    pid: int | None
    actor: str | None
    command: str | None
    since: datetime | None
    application_name: str | None = None
    #: What the holder's backend is doing now: its state, statement and for how long (s).
    backend_state: str | None = None
    statement: str | None = None
    statement_seconds: float | None = None

    def describe(self) -> str:
        who = self.actor or self.application_name or "unknown"
        what = f"`{self.command}`" if self.command else "a zdmigrate run"
        since = f" since {self.since:%Y-%m-%d %H:%M:%S %Z}" if self.since else ""
        return f"{what} by {who} (backend pid {self.pid}){since}"


def try_run_lock(conn: psycopg.Connection[Any], schema: str) -> LockHolder | None:
    """Take the one-run-per-database lock; None on success, else who holds it.

    Warning: a session-level advisory lock, held by this connection until
    `release_run_lock` or until the connection closes (also when the process is
    killed), so a crashed run never leaves the database locked.
    """
    row = conn.execute(
        "SELECT pg_try_advisory_lock(%s, hashtext(%s))", [_RUN_LOCK_KEY, schema]
    ).fetchone()
    if row and row[0]:
        return None
    return lock_holder(conn, schema)


def record_lock_holder(
    conn: psycopg.Connection[Any], schema: str, *, actor: str, command: str
) -> None:
    """Say who holds the run lock, for the error a second run shows."""
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (id, pid, actor, command) VALUES "
                "(1, pg_backend_pid(), %s, %s) ON CONFLICT (id) DO UPDATE SET "
                "pid = excluded.pid, actor = excluded.actor, "
                "command = excluded.command, since = now()"
            ).format(table(schema, "run_lock")),
            [actor, command],
        )


def lock_holder(conn: psycopg.Connection[Any], schema: str) -> LockHolder:
    """Who holds the run lock now, from pg_locks and the run_lock table."""
    row = conn.execute(
        """
        SELECT l.pid, a.application_name, a.backend_start, a.state, a.query,
               extract(epoch FROM clock_timestamp() - a.query_start)::float8
        FROM pg_locks l
        LEFT JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s
          AND l.objid = hashtext(%s)::oid AND l.database = (
              SELECT oid FROM pg_database WHERE datname = current_database())
        """,
        [_RUN_LOCK_KEY, schema],
    ).fetchone()
    pid = row[0] if row else None
    activity: dict[str, Any] = (
        {"backend_state": row[3], "statement": row[4], "statement_seconds": row[5]} if row else {}
    )
    holder = LockHolder(pid, None, None, row[2] if row else None, row[1] if row else None,
                        **activity)
    if pid is not None and schema_exists(conn, schema):
        info = conn.execute(
            sql.SQL("SELECT actor, command, since FROM {} WHERE pid = %s").format(
                table(schema, "run_lock")
            ),
            [pid],
        ).fetchone()
        if info:
            holder = LockHolder(pid, info[0], info[1], info[2], holder.application_name,
                                **activity)
    return holder


def release_run_lock(conn: psycopg.Connection[Any], schema: str) -> None:
    if conn.closed:
        return
    if schema_exists(conn, schema):
        with conn.transaction():
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE pid = pg_backend_pid()").format(
                    table(schema, "run_lock")
                )
            )
    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [_RUN_LOCK_KEY, schema])
