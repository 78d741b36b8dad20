"""What a backfill learns from the server and does to keep it well: default workers
chosen from its cores and load, the table's size, a throttled VACUUM of the ranges
already done (so old row versions are reused and the table stays near its size),
and an estimate of the final verification scan.

    workers, reason = choose_workers(conn, url, hint=0, limit=4)
    vacuumer = Vacuumer(url, table, every_rows=50_000, cost_delay_ms=2)
    vacuumer.maybe(rows_done)   # from one thread, between batches
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg import sql

from zdmigrate import db
from zdmigrate.backfill.keys import TableRef

_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}


def server_is_local(url: str) -> bool:
    """True when the URL names this machine (a host name or a socket directory)."""
    parts = urlsplit(url)
    hosts = [parts.hostname or ""]
    hosts += parse_qs(parts.query).get("host", [])
    return all(h in _LOCAL_HOSTS or h.startswith("/") for h in hosts)


def server_cores(conn: psycopg.Connection[Any], url: str, hint: int) -> tuple[int, str]:
    """The server's cores and where that number came from."""
    if hint > 0:
        return hint, f"{hint} server cores (server_cores option)"
    if server_is_local(url):
        cores = os.cpu_count() or 1
        return cores, f"{cores} cores (server on this machine)"
    row = conn.execute(
        "SELECT least(current_setting('max_parallel_workers')::int, "
        "current_setting('max_worker_processes')::int)"
    ).fetchone()
    cores = max(1, int(row[0])) if row else 1
    return cores, f"{cores} cores (max_parallel_workers of the server; set server_cores if wrong)"


def active_backends(conn: psycopg.Connection[Any]) -> int:
    """Other client backends running a query now: the server's current load."""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
        "AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
        "AND application_name <> 'zdmigrate-backfill'"
    ).fetchone()
    return int(row[0]) if row else 0


def choose_workers(
    conn: psycopg.Connection[Any], url: str, *, hint: int, limit: int
) -> tuple[int, str]:
    """Workers for a run: the server's cores less its current load, at most `limit`."""
    cores, where = server_cores(conn, url, hint)
    load = active_backends(conn)
    workers = max(1, min(limit, cores - load))
    return workers, (
        f"{workers} worker(s): {where}, {load} other active backend(s), at most {limit}"
    )


def lock_waits_on(conn: psycopg.Connection[Any], pids: list[int]) -> int:
    """Backends (the app's) waiting now on a lock that one of `pids` holds."""
    if not pids:
        return 0
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND pg_blocking_pids(pid) && %s::int[]",
        [pids],
    ).fetchone()
    return int(row[0]) if row else 0


def table_bytes(conn: psycopg.Connection[Any], table: TableRef) -> int:
    """The table's heap with its TOAST, free-space and visibility maps (no indexes)."""
    row = conn.execute("SELECT pg_table_size(%s::oid)", [table.oid]).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def scan_rate(conn: psycopg.Connection[Any], table: TableRef, blocks: int = 2000) -> float:
    """Bytes per second a sequential scan of the table reads, timed on its first blocks."""
    began = time.monotonic()
    conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE ctid < %s::tid").format(table.ident),
        [f"({blocks},0)"],
    )
    seconds = max(time.monotonic() - began, 1e-3)
    size = min(table_bytes(conn, table), blocks * 8192)
    return max(size, 8192) / seconds


class Vacuumer:
    """A plain VACUUM of the table every `every_rows` rows done, throttled by
    ``vacuum_cost_delay``, on a connection of its own (VACUUM runs outside a
    transaction). It takes SHARE UPDATE EXCLUSIVE, which app reads and writes do
    not wait on; with ``lock_timeout`` it gives up a round rather than queue behind DDL
    or autovacuum, and tries again (workers wait meanwhile if two rounds behind).
    Pages the backfill has not reached are all-visible and skipped, so each round
    reads about what was done since the last.
    """

    def __init__(
        self, url: str, table: TableRef, *, every_rows: int, cost_delay_ms: float,
        connect: Any = None,
    ) -> None:
        self.url = url
        self.table = table
        self.every_rows = every_rows
        self.cost_delay_ms = cost_delay_ms
        self.connect = connect or (lambda u: db.connect(
            u, application_name="zdmigrate-backfill-vacuum", autocommit=True))
        self.rounds = 0
        self.skipped = 0
        self._last_rows: int | None = None

    def maybe(self, rows_done: int) -> bool:
        """Vacuum if `every_rows` rows were done since the last round; True if it ran."""
        if self.every_rows <= 0:
            return False
        if self._last_rows is None:
            self._last_rows = rows_done
        if rows_done - self._last_rows < self.every_rows:
            return False
        if not self.run():
            return False  # skipped (autovacuum holds the table): try again, workers wait
        self._last_rows = rows_done
        return True

    def behind(self, rows_done: int) -> bool:
        """True when the rounds fell two intervals behind the backfill: workers wait,
        so the table never grows by more than about that share before a round."""
        return (
            self.every_rows > 0 and self._last_rows is not None
            and rows_done - self._last_rows >= 2 * self.every_rows
        )

    def due(self, rows_done: int) -> bool:
        return self.every_rows > 0 and (
            self._last_rows is None or rows_done - self._last_rows >= self.every_rows
        )

    def run(self) -> bool:
        try:
            with self.connect(self.url) as conn:
                conn.execute(
                    "SELECT set_config('vacuum_cost_delay', %s, false), "
                    "set_config('lock_timeout', '1s', false)",
                    [f"{self.cost_delay_ms:g}ms"],
                )
                conn.execute(sql.SQL("VACUUM {}").format(self.table.ident))
        except psycopg.errors.LockNotAvailable:
            self.skipped += 1
            return False
        self.rounds += 1
        return True
