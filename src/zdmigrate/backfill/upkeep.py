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
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg import sql

from zdmigrate import db
from zdmigrate.backfill.keys import TableRef

_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}

#: Below this many rows a backfill runs no VACUUM rounds, only the final one.
SMALL_TABLE_ROWS = 10_000


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


def active_backends(conn: psycopg.Connection[Any], samples: int = 5, gap: float = 0.004) -> int:
    """Other client backends running a query now: the server's current load.

    The mean of a few looks `gap` seconds apart, rounded down: an app's
    millisecond queries, caught in flight now and then, count for what they
    weigh (half a backend when active half the time), a backend busy throughout
    counts one."""
    total = 0
    for n in range(max(1, samples)):
        if n:
            time.sleep(gap)
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
            "AND application_name NOT LIKE 'zdmigrate-backfill%%'"
        ).fetchone()
        total += int(row[0]) if row else 0
    return total // max(1, samples)


@dataclass(frozen=True)
class WorkerChoice:
    """Workers to start with, how many the run may grow to, and why."""

    start: int
    ceiling: int
    reason: str


def choose(conn: psycopg.Connection[Any], url: str, *, hint: int, limit: int) -> WorkerChoice:
    """Workers for a run: the server's cores less its current load, at most `limit`;
    the run may add workers up to the cores (at most `limit`) while that makes it
    faster and the app does not wait on it (see the runner's governor)."""
    cores, where = server_cores(conn, url, hint)
    load = active_backends(conn)
    workers = max(1, min(limit, cores - load))
    ceiling = max(workers, min(limit, cores))
    reason = f"{workers} worker(s): {where}, {load} other active backend(s), at most {limit}"
    return WorkerChoice(workers, ceiling, reason)


def choose_workers(
    conn: psycopg.Connection[Any], url: str, *, hint: int, limit: int
) -> tuple[int, str]:
    """Workers for a run: the server's cores less its current load, at most `limit`."""
    choice = choose(conn, url, hint=hint, limit=limit)
    return choice.start, choice.reason


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
    or autovacuum, and tries again. Pages the backfill has not reached are
    all-visible and skipped, so each round reads about what was done since the last.

    The rounds keep pace with the backfill: the first runs unthrottled (started
    at the gentlest delay, the early rounds fell behind and held the workers); a
    round that ends within a quarter of its interval doubles the cost delay of
    the next (up to `cost_delay_ms`, the gentlest), a round that ends after the
    next one was already due halves it (down to 0). Workers wait only when the
    rounds fall `BEHIND` intervals behind.
    """

    #: Intervals the rounds may fall behind before workers wait for them.
    BEHIND = 2

    def __init__(
        self, url: str, table: TableRef, *, every_rows: int, cost_delay_ms: float,
        connect: Any = None,
    ) -> None:
        self.url = url
        self.table = table
        self.every_rows = every_rows
        self.cost_delay_ms = cost_delay_ms
        #: The delay of the next round (adapts between 0 and `cost_delay_ms`).
        self.delay_ms = 0.0
        self.connect = connect or (lambda u: db.connect(
            u, application_name="zdmigrate-backfill-vacuum", autocommit=True))
        self.rounds = 0
        self.skipped = 0
        self.seconds = 0.0
        self._last_rows: int | None = None

    def maybe(self, rows_done: int, now_rows: Any = None) -> bool:
        """Vacuum if `every_rows` rows were done since the last round; True if it ran.

        `now_rows()` (optional) tells the rows done when the round ends, to pace
        the next round's cost delay."""
        if self.every_rows <= 0:
            return False
        if self._last_rows is None:
            self._last_rows = rows_done
        if rows_done - self._last_rows < self.every_rows:
            return False
        if not self.run():
            return False  # skipped (autovacuum holds the table): try again, workers wait
        self._last_rows = rows_done
        if now_rows is not None:
            self._pace(int(now_rows()) - rows_done)
        return True

    def _pace(self, rows_during: int) -> None:
        if rows_during >= self.every_rows:  # the next round was due before this one ended
            self.delay_ms = self.delay_ms / 2 if self.delay_ms > 0.25 else 0.0
        elif rows_during < self.every_rows / 4 and self.delay_ms < self.cost_delay_ms:
            self.delay_ms = min(self.cost_delay_ms, max(self.delay_ms * 2, 0.25))

    def behind(self, rows_done: int, batch: int = 0) -> bool:
        """True when the rounds fell `BEHIND` intervals (and two batches of `batch`
        rows) behind the backfill: workers wait, so the table never grows by more
        than about that share before a round. (On a small table one batch may be
        several intervals: waiting after each would only slow it down.)"""
        return (
            self.every_rows > 0 and self._last_rows is not None
            and rows_done - self._last_rows >= max(self.BEHIND * self.every_rows, 2 * batch)
        )

    def due(self, rows_done: int) -> bool:
        return self.every_rows > 0 and (
            self._last_rows is None or rows_done - self._last_rows >= self.every_rows
        )

    def run(self) -> bool:
        began = time.monotonic()
        try:
            with self.connect(self.url) as conn:
                conn.execute(
                    "SELECT set_config('vacuum_cost_delay', %s, false), "
                    "set_config('lock_timeout', '1s', false)",
                    [f"{self.delay_ms:g}ms"],
                )
                conn.execute(sql.SQL("VACUUM {}").format(self.table.ident))
        except psycopg.errors.LockNotAvailable:
            self.skipped += 1
            return False
        self.rounds += 1
        self.seconds += time.monotonic() - began
        return True
