"""The runtime's background thread: one connection that listens, polls and heartbeats.

One loop, one connection, owned by the thread alone (no locking around it):

- on connect: LISTEN on the phase channel, load every phase, send a heartbeat
  (each query in a transaction with a local statement_timeout);
- a NOTIFY on the phase channel makes it read the phases again at once: the
  payload is never taken as the value (any role that can connect may NOTIFY);
- every `poll_interval` the phases (and the version schemas) are read again (the fallback when a notify
  is lost, e.g. behind a transaction-mode pooler);
- every `heartbeat_interval` the instance row is refreshed with the shadow-read counts.

Every query must be answered within `query_timeout` (see `_watchdog`): silence
(a hung proxy, a peer gone without a reset) cuts the connection. Any failure
closes the connection, is logged once (see `_problems`), and the loop
reconnects with backoff, starting again from `retry_interval` after each
successful connection; the cache keeps the last known phases meanwhile. On
stop the thread deletes the instance row, if it can reach the database at once.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors

from zdmigrate.runtime import _version_schemas as version_schemas
from zdmigrate.runtime._watchdog import Watchdog
from zdmigrate.state import Store

if TYPE_CHECKING:
    from zdmigrate.runtime._runtime import Runtime

_CONNECTION = "database connection"
_MIGRATIONS_TABLE = "reading phases"
_INSTANCES_TABLE = "heartbeat"
_MISSING_STATE = (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName)
#: How long stop() waits for the thread to finish on its own before cutting a
#: connection whose query hangs; the goodbye query gets as long.
_STOP_GRACE = 1.0
#: Connections inherited from a parent process: never closed (that would end the
#: parent's session on the shared socket), only kept from the garbage collector.
_ORPHANS: list[object] = []


class Worker:
    """The thread and its connection; a new one per process (see `Runtime`)."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._conn: psycopg.Connection[Any] | None = None
        self._stage = "connect"
        self.loaded = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zdmigrate-runtime", daemon=True)
        self._beat_requested = False
        self._watchdog = Watchdog()
        #: Seconds to wait before the next reconnect attempt.
        self.retry_delay = runtime.retry_interval

    # -- control, from other threads ------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stopping.set()
        self._wake()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            deadline = time.monotonic() + timeout
            self._thread.join(min(timeout, _STOP_GRACE))
            if self._thread.is_alive():
                # a query that hangs (or the goodbye on a silent connection): cut it
                self._watchdog.cut_now()
                self._thread.join(max(0.0, deadline - time.monotonic()))
        if not self._thread.is_alive():
            self._watchdog.close()
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def request_heartbeat(self) -> None:
        """Send a heartbeat soon (the counts changed and someone wants them now)."""
        self._beat_requested = True
        self._wake()

    def abandon(self) -> None:
        """In a forked child: forget the parent's thread and connection without using them."""
        if self._conn is not None:
            _ORPHANS.append(self._conn)
            self._conn = None
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    @property
    def connected(self) -> bool:
        conn = self._conn
        return conn is not None and not conn.closed and not conn.broken

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass  # pipe full (already woken) or closed (stopped)

    # -- the loop -------------------------------------------------------------

    def _run(self) -> None:
        rt = self._rt
        try:
            while not self._stopping.is_set():
                cut_before = self._watchdog.fired
                try:
                    self._session()
                except Exception as exc:  # never let the thread die: log once, retry
                    problem: Exception = exc
                    if self._watchdog.fired != cut_before:
                        problem = psycopg.OperationalError(
                            f"no answer from the database within {rt.query_timeout:g} s "
                            "(a hung connection); reconnecting"
                        )
                    rt.problems.report(_CONNECTION, problem, during=self._stage)
                    self._close()
                    self._sleep(self.retry_delay)
                    self.retry_delay = min(self.retry_delay * 2, rt.retry_interval_max)
        finally:
            self._goodbye()

    @contextmanager
    def _answer_within(self, conn: psycopg.Connection[Any], seconds: float) -> Iterator[None]:
        """Cut `conn` if the queries inside do not get their answer within `seconds`."""
        self._watchdog.arm(conn.fileno(), seconds)
        try:
            yield
        finally:
            self._watchdog.disarm()

    @contextmanager
    def _statement_timeout(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        """A transaction whose statements the server stops after `query_timeout`.

        Transaction-local (SET LOCAL), so behind a transaction-mode pooler the
        setting never reaches a server connection the application uses next.
        """
        with conn.transaction():
            conn.execute(
                "SELECT set_config('statement_timeout', %s, true)",
                [f"{max(1, int(self._rt.query_timeout * 1000))}ms"],
            )
            yield

    def _session(self) -> None:
        rt = self._rt
        self._stage = "connect"
        conn = self._conn = rt.connect()
        with self._answer_within(conn, rt.query_timeout):
            self._stage = "listen"
            Store(conn, rt.schema).migrations.listen()
            self._refresh(conn)
            self._heartbeat(conn)
        rt.problems.resolved(_CONNECTION)
        self.retry_delay = rt.retry_interval  # one outage must not slow every later reconnect
        now = time.monotonic()
        next_poll, next_beat = now + rt.poll_interval, now + rt.heartbeat_interval
        while not self._stopping.is_set():
            self._stage = "listen"
            with self._answer_within(conn, rt.query_timeout):
                if self._drain_notifies(conn):
                    self._refresh(conn)
                    next_poll = time.monotonic() + rt.poll_interval
                now = time.monotonic()
                if now >= next_beat or self._beat_requested:
                    self._heartbeat(conn)
                    next_beat = now + rt.heartbeat_interval
                if now >= next_poll:
                    self._refresh(conn)
                    next_poll = now + rt.poll_interval
            self._wait(conn, min(next_poll, next_beat) - time.monotonic())

    def _refresh(self, conn: psycopg.Connection[Any]) -> None:
        rt = self._rt
        self._stage = "read phases"
        try:
            with self._statement_timeout(conn):
                phases, unknown = Store(conn, rt.schema).migrations.load_phases()
        except _MISSING_STATE:
            rt.problems.report(
                _MIGRATIONS_TABLE,
                f"table {rt.schema}.migrations does not exist yet; every migration "
                "counts as pending",
            )
            phases, unknown = {}, []
        else:
            rt.problems.resolved(_MIGRATIONS_TABLE)
        if unknown:
            rt.problems.report("parse phases", f"unknown phase values ignored: {unknown}")
        rt.replace_phases(phases)
        self._stage = "read version schemas"
        rt.replace_version_schemas(version_schemas.load(conn))
        rt.connection_search_path = version_schemas.current_search_path(conn)
        self.loaded.set()

    def _heartbeat(self, conn: psycopg.Connection[Any]) -> None:
        rt = self._rt
        self._stage = "heartbeat"
        self._beat_requested = False
        try:
            with self._statement_timeout(conn):
                Store(conn, rt.schema).instances.write_heartbeat(
                    app=rt.app,
                    instance_id=rt.instance_id,
                    version=rt.version,
                    host=rt.host,
                    pid=os.getpid(),
                    ttl_seconds=rt.ttl_seconds,
                    info=rt.heartbeat_info(),
                )
        except _MISSING_STATE:
            rt.problems.report(
                _INSTANCES_TABLE, f"table {rt.schema}.instances does not exist yet; not registered"
            )
        except pg_errors.InsufficientPrivilege as exc:
            # refused (e.g. a live row of this id runs another version): the
            # connection is fine, keep reading phases and try again next time
            rt.problems.report(_INSTANCES_TABLE, exc)
        else:
            rt.problems.resolved(_INSTANCES_TABLE)

    def _drain_notifies(self, conn: psycopg.Connection[Any]) -> bool:
        """Consume pending notifications; True if any came (the phases must be read again).

        Only a hint: any role that can connect may NOTIFY on the channel, so the
        payload is never taken as a phase; the table is the truth.
        """
        came = False
        for _notify in conn.notifies(timeout=0):
            came = True
        if conn.broken or conn.closed:
            raise psycopg.OperationalError("the runtime's connection was closed")
        return came

    def _wait(self, conn: psycopg.Connection[Any], timeout: float) -> None:
        if timeout <= 0 or self._stopping.is_set():
            return
        ready, _, _ = select.select([conn.fileno(), self._wake_r], [], [], timeout)
        if self._wake_r in ready:
            self._clear_wake()

    def _sleep(self, seconds: float) -> None:
        if self._stopping.is_set():
            return
        try:
            ready, _, _ = select.select([self._wake_r], [], [], seconds)
        except (OSError, ValueError):
            return
        if ready:
            self._clear_wake()

    def _clear_wake(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except OSError:
            pass

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def _goodbye(self) -> None:
        """Delete this instance's row if the database is reachable now; then close."""
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            try:
                with self._answer_within(conn, min(self._rt.query_timeout, _STOP_GRACE)):
                    Store(conn, self._rt.schema).instances.unregister_heartbeat(
                        app=self._rt.app, instance_id=self._rt.instance_id
                    )
            except Exception as exc:
                self._rt.problems.report("unregister", exc)
        self._close()

