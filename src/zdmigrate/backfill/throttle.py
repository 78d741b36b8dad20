"""Throttles of a backfill: replication lag, WAL volume and checkpoint pressure, and a
rows-per-second cap.

A `LagSource` says how far behind the replicas are, in seconds:
`PrimaryLag` reads ``pg_stat_replication`` on the primary (the largest of
write/flush/replay lag; without ``pg_monitor`` those columns read as NULL, so
the lag reads as 0), `ReplicaLag` asks a standby how old its last replayed
transaction is. Any object with a ``lag_seconds()`` method will do, e.g. one
that reads your monitoring system. All throttles are shared by the workers of
one process and are thread-safe.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class WalReading:
    """What the server says about its WAL and checkpoints, at one moment."""

    at: float  # time.monotonic() of the reading
    lsn: int  # pg_current_wal_insert_lsn(), bytes
    #: Redo point and age (seconds) of the last completed checkpoint; None when
    #: pg_control_checkpoint() may not be read.
    redo: int | None
    checkpoint_age: float | None
    #: Checkpoints since the statistics were reset: timed and requested
    #: (pg_stat_checkpointer on PostgreSQL 17+, pg_stat_bgwriter before).
    timed: int
    requested: int
    max_wal_size: int  # bytes
    completion_target: float

    @property
    def checkpoint_distance(self) -> float:
        """WAL after which the server starts a checkpoint of its own accord."""
        return self.max_wal_size / (1.0 + self.completion_target)


_CHECKPOINTS = {
    # PostgreSQL 17 moved the checkpoint counters to pg_stat_checkpointer
    True: "SELECT num_timed, num_requested FROM pg_stat_checkpointer",
    False: "SELECT checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter",
}


def read_wal(conn: psycopg.Connection[Any]) -> WalReading:
    """One reading of the server's WAL position, last checkpoint and its settings."""
    row = conn.execute(
        # the insert position: WAL of commits that do not wait for their flush
        # (the backfill's) is counted when written, not when the WAL writer gets to it
        "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint, "
        "pg_size_bytes(current_setting('max_wal_size')), "
        "current_setting('checkpoint_completion_target')::float8"
    ).fetchone()
    assert row is not None
    counts = conn.execute(_CHECKPOINTS[conn.info.server_version >= 170000]).fetchone()
    redo = age = None
    try:
        control = conn.execute(
            "SELECT pg_wal_lsn_diff(redo_lsn, '0/0')::bigint, "
            "extract(epoch FROM now() - checkpoint_time)::float8 FROM pg_control_checkpoint()"
        ).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        control = None
    if control is not None:
        redo, age = int(control[0]), float(control[1])
    return WalReading(
        time.monotonic(), int(row[0]), redo, age, int(counts[0]) if counts else 0,
        int(counts[1]) if counts else 0, int(row[1]), float(row[2]),
    )


class WalThrottle:
    """Slows the backfill down on WAL volume and checkpoint pressure.

    Two rules, checked at most every `interval` seconds (one reading of the server
    shared by the workers); a worker waits before its next batch while either says
    so, in waits of at most `MAX_WAIT` seconds, each re-checked:

    - a budget: the server's WAL rate over the last `WINDOW` seconds above
      `max_bytes_per_second` (0 = no budget);
    - checkpoint spacing: once a checkpoint was started by WAL volume (more than
      half of max_wal_size / (1 + checkpoint_completion_target) since the one
      before) less than `min_checkpoint_seconds` after the one before, the WAL
      written since the last checkpoint may grow only as fast as would start the
      next one `min_checkpoint_seconds` after it (0 = off).

    The rates are the server's (every writer's WAL drives its checkpoints), so an
    app writing above the budget slows the backfill to a batch per `MAX_WAIT`.
    It also counts the checkpoints that ran while the backfill did (`summary`).
    """

    WINDOW = 10.0
    MAX_WAIT = 5.0

    def __init__(
        self, url: str | None, *, max_bytes_per_second: float, min_checkpoint_seconds: float,
        interval: float, reader: Callable[[], WalReading] | None = None,
    ) -> None:
        self.url = url
        self.budget = max_bytes_per_second
        self.spacing = min_checkpoint_seconds
        self.interval = interval
        self._reader = reader
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._samples: list[WalReading] = []
        self.first: WalReading | None = None
        self.last: WalReading | None = None
        self._checked = float("-inf")
        self._until = 0.0
        self._why = ""
        #: The interval between the last two checkpoints driven by WAL, if one was seen
        self.pressure: float | None = None
        self.throttled_seconds = 0.0
        self._redo: tuple[int, float] | None = None  # (redo, wall time of that checkpoint)

    @property
    def active(self) -> bool:
        return self.url is not None or self._reader is not None

    def read(self) -> WalReading:
        if self._reader is not None:
            return self._reader()
        try:
            if self._conn is None or self._conn.closed:
                assert self.url is not None
                self._conn = connect(self.url, application_name="zdmigrate-backfill-wal")
            return read_wal(self._conn)
        except (psycopg.OperationalError, DatabaseUnreachable) as exc:
            self.close()
            reason = exc.message if isinstance(exc, DatabaseUnreachable) else str(exc)
            raise DatabaseUnreachable(f"cannot read the WAL position: {reason}") from None

    def check(self) -> tuple[float, str]:
        """Seconds to wait now (0: go) and why; reads the server at most every `interval`."""
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= self.interval:
                self._checked = now
                self._observe(self.read())
                wait, why = self.decide()
                self._until, self._why = now + wait, why
            return max(0.0, self._until - now), self._why

    def _observe(self, reading: WalReading) -> None:
        if self.first is None:
            self.first = reading
        self.last = reading
        self._samples.append(reading)
        while len(self._samples) > 2 and reading.at - self._samples[1].at >= self.WINDOW:
            self._samples.pop(0)
        if reading.redo is None or reading.checkpoint_age is None:
            return
        wall = time.time() - reading.checkpoint_age
        if self._redo is not None and reading.redo != self._redo[0]:
            wal, seconds = reading.redo - self._redo[0], wall - self._redo[1]
            if wal >= reading.checkpoint_distance / 2 and seconds < self.spacing:
                self.pressure = max(seconds, 0.0)
        self._redo = (reading.redo, wall)

    def decide(self) -> tuple[float, str]:
        """The wait the last readings call for, and why (pure arithmetic on them)."""
        reading = self.last
        if reading is None:
            return 0.0, ""
        waits: list[tuple[float, str]] = []
        oldest = self._samples[0]
        span = reading.at - oldest.at
        if self.budget > 0 and span > 0:
            written = reading.lsn - oldest.lsn
            if written > self.budget * span:
                waits.append((
                    written / self.budget - span,
                    f"WAL {written / span / 2**20:,.1f} MiB/s over {span:.0f}s > "
                    f"max_wal_bytes_per_second {self.budget / 2**20:,.2f} MiB/s",
                ))
        if (self.spacing > 0 and self.pressure is not None and reading.redo is not None
                and reading.checkpoint_age is not None):
            since = reading.lsn - reading.redo
            distance = reading.checkpoint_distance
            allowed = distance * reading.checkpoint_age / self.spacing
            if since > allowed:
                waits.append((
                    since * self.spacing / distance - reading.checkpoint_age,
                    f"checkpoints every {self.pressure:.0f}s < {self.spacing:g}s "
                    f"(max_wal_size {reading.max_wal_size / 2**20:,.0f} MiB, "
                    f"{since / 2**20:,.0f} MiB of WAL since the last, "
                    f"{reading.checkpoint_age:.0f}s ago)",
                ))
        if not waits:
            return 0.0, ""
        wait, why = max(waits)
        return min(wait, self.MAX_WAIT), why

    def wait(
        self, stop: threading.Event, on_pause: Callable[[str], None],
        on_resume: Callable[[], None], keepalive: Callable[[], None],
    ) -> None:
        """Return once the WAL rules let a batch go (or `stop` is set)."""
        if not self.active:
            return
        wait, why = self.check()
        if wait <= 0:
            return
        on_pause(why)
        while wait > 0 and not stop.is_set():
            keepalive()
            began = time.monotonic()
            stop.wait(wait)
            with self._lock:
                self.throttled_seconds += time.monotonic() - began
            wait, _ = self.check()
        on_resume()

    def finish(self) -> None:
        """A last reading, for `summary` (a failure to read leaves the last one)."""
        if not self.active:
            return
        with contextlib.suppress(psycopg.Error, DatabaseUnreachable):
            self._observe(self.read())

    def summary(self) -> dict[str, Any]:
        """WAL written and checkpoints run (server-wide) since the first reading."""
        first, last = self.first, self.last
        if first is None or last is None:
            return {}
        return {
            "wal_bytes": last.lsn - first.lsn,
            "checkpoints_timed": last.timed - first.timed,
            "checkpoints_requested": last.requested - first.requested,
            "wal_throttled_seconds": round(self.throttled_seconds, 2),
        }

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
