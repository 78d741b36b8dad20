"""Throttles of a backfill: replication lag and a rows-per-second cap.

A `LagSource` says how far behind the replicas are, in seconds:
`PrimaryLag` reads ``pg_stat_replication`` on the primary (the largest of
write/flush/replay lag; without ``pg_monitor`` those columns read as NULL, so
the lag reads as 0), `ReplicaLag` asks a standby how old its last replayed
transaction is. Any object with a ``lag_seconds()`` method will do, e.g. one
that reads your monitoring system. All throttles are shared by the workers of
one process and are thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import psycopg

from zdmigrate.config import redact_url
from zdmigrate.db import connect
from zdmigrate.dsn import scrub
from zdmigrate.errors import DatabaseUnreachable


class LagSource(Protocol):
    def lag_seconds(self) -> float:
        """Replication lag now, seconds (0 when there is no replica)."""


class _QueryLag:
    query = ""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: psycopg.Connection[Any] | None = None

    def lag_seconds(self) -> float:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self.dsn, application_name="zdmigrate-backfill")
            row = self._conn.execute(self.query).fetchone()
        except (psycopg.OperationalError, DatabaseUnreachable) as exc:
            self.close()
            reason = exc.message if isinstance(exc, DatabaseUnreachable) else str(exc)
            raise DatabaseUnreachable(
                f"cannot read replication lag from {redact_url(self.dsn)}: "
                f"{scrub(reason, self.dsn)}"
            ) from None
        return float(row[0]) if row and row[0] is not None else 0.0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PrimaryLag(_QueryLag):
    """The largest lag in ``pg_stat_replication`` of the primary."""

    query = (
        "SELECT coalesce(max(extract(epoch FROM greatest(write_lag, flush_lag, replay_lag))), 0) "
        "FROM pg_stat_replication"
    )


class ReplicaLag(_QueryLag):
    """Age of the last transaction a standby replayed (0 when it has caught up)."""

    query = (
        "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 "
        "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
        "ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END"
    )


class LagThrottle:
    """Blocks workers while lag exceeds `max_lag`; checks the source at most every `interval`."""

    def __init__(self, source: LagSource | None, max_lag: float, interval: float) -> None:
        self.source = source if max_lag > 0 else None
        self.max_lag = max_lag
        self.interval = interval
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._lag = 0.0

    def current(self) -> float:
        if self.source is None:
            return 0.0
        with self._lock:
            now = time.monotonic()
            if now - self._checked_at >= self.interval:
                self._lag = self.source.lag_seconds()
                self._checked_at = now
            return self._lag

    def wait(
        self, stop: threading.Event, poll: float, on_pause: Callable[[float], None],
        on_resume: Callable[[], None], keepalive: Callable[[], None],
    ) -> None:
        """Return once lag is within bounds (or `stop` is set)."""
        lag = self.current()
        if lag <= self.max_lag:
            return
        on_pause(lag)
        while not stop.is_set():
            keepalive()
            stop.wait(max(poll, self.interval))
            if self.current() <= self.max_lag:
                break
        on_resume()

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if callable(close):
            close()


class RateLimiter:
    """At most `rate` rows per second over the process (0 = unlimited)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def pace(self, rows: int, stop: threading.Event) -> None:
        if self.rate <= 0 or rows <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now)
            self._next = start + rows / self.rate
            delay = self._next - now
        if delay > 0:
            stop.wait(delay)
