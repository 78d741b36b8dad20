"""Simulated app instances: each a real connection in a thread, with zdmigrate.runtime heartbeats.

An `AppInstance` is what one pod or server of the shop would be: a connection
whose ``application_name`` is ``shop@VERSION`` (so zdmigrate sees it in
pg_stat_activity), a `Runtime` that heartbeats and follows phases, and a thread
sending requests at the rate the `Router` gives it. With a rate of 0 it is idle
but alive, as a blue environment after the switch: connected and heartbeating.

`Fleet` starts and stops instances to match the counts a deploy step asks for.

Warning: stopping an instance closes its connection; PostgreSQL ends the
backend a moment later, so pg_stat_activity may still show it briefly. Wait
with `Fleet.wait_disconnected` before telling zdmigrate a version is gone.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

import psycopg
from psycopg.conninfo import make_conninfo

from zdmigrate.demo.shop import APP, ShopVersion
from zdmigrate.demo.shop import app_class as shop_app_class
from zdmigrate.demo.traffic import TrafficStats
from zdmigrate.runtime import Runtime
from zdmigrate.runtime._source import runtime_conninfo


class Router:
    """Splits the fleet's request rate: by version weight, then evenly over its instances."""

    def __init__(self, total_rate: float) -> None:
        self.total_rate = total_rate
        self._weights: dict[str, float] = {}
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def route(self, weights: Mapping[str, float]) -> None:
        with self._lock:
            self._weights = dict(weights)

    def set_running(self, running: Mapping[str, int]) -> None:
        with self._lock:
            self._running = dict(running)

    def share(self, version: str) -> float:
        """The fraction of all requests `version` receives now."""
        with self._lock:
            live = {v: w for v, w in self._weights.items() if self._running.get(v)}
            total = sum(live.values())
            return live.get(version, 0.0) / total if total else 0.0

    def rate(self, version: str) -> float:
        """Requests per second one instance of `version` sends now."""
        share = self.share(version)
        with self._lock:
            running = self._running.get(version, 0)
        return self.total_rate * share / running if running else 0.0


class RequestRecorder(Protocol):
    """Where an instance records each request: `TrafficStats`, or a test's own recorder."""

    def record(self, version: str, seconds: float, error: BaseException | None = None) -> None:
        ...


class AppInstance:
    """One instance of the shop at `version`: a connection, a runtime and a request loop.

    Its request rate is `rate` when set (requests per second; 0 keeps it connected
    and idle), else the share the `router` gives it. Every connection it opens,
    the runtime's too, is named ``shop@VERSION``; `vanish` cuts them all from the
    server side as a dying host would, with no goodbye. With
    `count_connect_failures` off, a request that cannot even connect is not
    counted (the instance waits and tries again), as when the database is down.
    """

    def __init__(
        self, url: str, version: str, name: str, *, stats: RequestRecorder,
        router: Router | None = None, rate: float | None = None, seeded_rows: int = 1,
        schema: str = "zdmigrate", seed: int = 0,
        app_class: type[ShopVersion] | None = None, with_runtime: bool = True,
        ttl_seconds: int = 10, heartbeat_interval: float = 2.0, poll_interval: float = 0.25,
        count_connect_failures: bool = True,
    ) -> None:
        self.url = url
        self.version = version
        self.name = name
        self.stats = stats
        self.router = router
        #: Requests per second of this instance; None follows the router.
        self.rate = rate
        self.seeded_rows = seeded_rows
        self.schema = schema
        self.rng = random.Random(seed)
        self.app_class = app_class or shop_app_class(version)
        self.with_runtime = with_runtime
        self.ttl_seconds = ttl_seconds
        self.heartbeat_interval = heartbeat_interval
        self.poll_interval = poll_interval
        self.count_connect_failures = count_connect_failures
        self.runtime: Runtime | None = None
        self.app: ShopVersion | None = None
        self.conn: psycopg.Connection[Any] | None = None
        #: Set once the instance's request connection is open.
        self.connected = threading.Event()
        #: Server process ids of every connection the instance opened (`vanish` ends them).
        self.backend_pids: list[int] = []
        self._gone = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<{APP} {self.name}>"

    def start(self) -> AppInstance:
        if self.with_runtime:
            self.runtime = Runtime(
                self._runtime_connection, app=APP, version=self.version,
                instance_id=self.name, schema=self.schema,
                heartbeat_interval=self.heartbeat_interval, ttl_seconds=self.ttl_seconds,
                poll_interval=self.poll_interval,
            ).start()
        self.app = self.app_class(self.runtime, self.seeded_rows)
        self.conn = self._connect()
        self.connected.set()
        self._thread = threading.Thread(target=self._loop, name=f"app {self.name}", daemon=True)
        self._thread.start()
        return self

    def current_rate(self) -> float:
        if self.rate is not None:
            return self.rate
        return self.router.rate(self.version) if self.router is not None else 0.0

    def _connect(self) -> psycopg.Connection[Any]:
        conn = self._open(make_conninfo(self.url, application_name=f"{APP}@{self.version}",
                                        connect_timeout=10))
        return conn

    def _runtime_connection(self) -> psycopg.Connection[Any]:
        # the runtime's usual connection (keepalives and all), tracked so `vanish` ends it
        return self._open(runtime_conninfo(self.url, f"{APP}@{self.version}"))

    def _open(self, conninfo: str) -> psycopg.Connection[Any]:
        if self._gone:
            raise psycopg.OperationalError(f"{self.name} is gone")
        conn = psycopg.connect(conninfo, autocommit=True)
        self.backend_pids.append(conn.info.backend_pid)
        return conn

    def _loop(self) -> None:
        app = self.app
        assert app is not None
        next_at = time.monotonic()
        while not self._stop.is_set():
            rate = self.current_rate()
            if rate <= 0:
                next_at = time.monotonic()
                self._stop.wait(0.05)
                continue
            delay = next_at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            # an open loop with a bounded backlog: a slow moment is not made up in a burst
            next_at = max(next_at + self.rng.expovariate(rate), time.monotonic() - 1.0)
            self._one_request(app)

    def _one_request(self, app: ShopVersion) -> None:
        if not self.count_connect_failures and not self._ensure_connected(app):
            self._stop.wait(0.2)
            return
        started = time.perf_counter()
        try:
            self._ensure_connected(app, quiet=False)
            assert self.conn is not None
            app.request(self.conn, self.rng)
        except Exception as exc:  # any error is a failed request, as a user would see it
            self.stats.record(self.version, time.perf_counter() - started, exc)
        else:
            self.stats.record(self.version, time.perf_counter() - started)

    def _ensure_connected(self, app: ShopVersion, *, quiet: bool = True) -> bool:
        """Reconnect if the connection broke; False when that failed (and `quiet`)."""
        if self.conn is not None and not self.conn.closed and not self.conn.broken:
            return True
        try:
            self.conn = self._connect()
        except psycopg.OperationalError:
            if quiet:
                return False
            raise
        app.reconnected(self.conn)
        return True

    def stop(self) -> None:
        """Stop cleanly: finish the request in flight, close the connection, say goodbye."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self.conn is not None:
            self.conn.close()
        if self.runtime is not None:
            self.runtime.stop()

    def vanish(self) -> None:
        """Disappear as a host does when it dies or is cut off: no goodbye.

        The connections are cut from the server side and never come back, so the
        heartbeat row stays until its TTL runs out.
        """
        self._gone = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE pid = ANY(%s)", [self.backend_pids])
        if self.conn is not None:
            self.conn.close()
        if self.runtime is not None:
            self.runtime.stop()


class Fleet:
    """The running instances of every version; `scale` starts or stops them to a count."""

    def __init__(self, url: str, *, stats: TrafficStats, router: Router, seeded_rows: int,
                 schema: str, versions: Mapping[str, type[ShopVersion]] | None = None,
                 with_runtime: bool = True) -> None:
        self.url = url
        self.versions = versions
        self.with_runtime = with_runtime
        self.stats = stats
        self.router = router
        self.seeded_rows = seeded_rows
        self.schema = schema
        self.instances: dict[str, list[AppInstance]] = {}
        self._started = 0

    def count(self, version: str) -> int:
        return len(self.instances.get(version, []))

    def counts(self) -> dict[str, int]:
        return {v: len(i) for v, i in self.instances.items() if i}

    def scale(self, counts: Mapping[str, int]) -> None:
        """Start instances up to each count; stop the oldest ones beyond it (new ones first)."""
        for version, wanted in counts.items():
            running = self.instances.setdefault(version, [])
            while len(running) < wanted:
                self._started += 1
                instance = AppInstance(
                    self.url, version, f"{APP}-{version}-{self._started}", stats=self.stats,
                    router=self.router, seeded_rows=self.seeded_rows, schema=self.schema,
                    seed=self._started,
                    app_class=(self.versions or {}).get(version) or shop_app_class(version),
                    with_runtime=self.with_runtime,
                )
                instance.start()
                running.append(instance)
                self.router.set_running(self.counts())
        for version, wanted in counts.items():
            running = self.instances[version]
            while len(running) > wanted:
                instance = running.pop(0)
                self.router.set_running(self.counts())
                instance.stop()

    def stop_all(self) -> None:
        self.scale({v: 0 for v in self.instances})

    def wait_disconnected(self, version: str, timeout: float = 15.0) -> bool:
        """Wait until no session of `version` is left in pg_stat_activity; True if none is."""
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.url, autocommit=True, application_name="zdmigrate demo") as conn:
            while True:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                    "AND datname = current_database()",
                    [f"{APP}@{version}"],
                ).fetchone()
                if not row or not row[0]:
                    return True
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.1)
