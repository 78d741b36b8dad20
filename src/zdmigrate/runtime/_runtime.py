"""`Runtime`: the app's live link to zdmigrate: heartbeats, a phase cache, dual-write helpers.

Everything a request calls (`phase`, `DualWrite.write`, `DualWrite.read_column`,
`DualWrite.compare`) reads memory only and never raises because the database is
away. A background thread (see `_worker`) keeps the memory current.

Surprises worth knowing:

- `start` waits up to `start_timeout` for the first load of phases, so the first
  request does not act on "pending" for a migration that is long done. If the
  database cannot be reached by then, the app starts anyway, every migration
  counts as pending, and the thread keeps retrying.
- After `os.fork` (gunicorn, uWSGI pre-fork) the child gets a thread and a
  connection of its own and registers as a new instance; the parent's
  connection is never touched in the child.
- At interpreter exit the instance row is deleted; a process killed with
  SIGKILL leaves its row, which stops counting when its TTL runs out.
"""

from __future__ import annotations

import atexit
import os
import re
import socket
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from zdmigrate.phases import Phase
from zdmigrate.runtime import _source
from zdmigrate.runtime._dual_write import DualWrite, Transform
from zdmigrate.runtime._problems import ProblemLog
from zdmigrate.runtime._shadow import ShadowReadCounts
from zdmigrate.runtime._version_schemas import VersionSchema, search_path_for
from zdmigrate.runtime._worker import Worker

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


class Runtime:
    """Register this process as a live instance of `app` at `version`; follow phases.

        with Runtime("postgresql://app@db/shop", app="shop", version="2.0.1") as rt:
            rt.phase("0002_rename_users_name")        # Phase.DUAL_WRITE
            dw = rt.dual_write("0002_rename_users_name", {"name": "full_name"})
            dw.write({"name": "Ann"})                 # {"name": "Ann", "full_name": "Ann"}

    `database` is a libpq DSN or URL, a ``psycopg_pool.ConnectionPool``, a
    SQLAlchemy ``Engine``, or a callable returning a new psycopg connection. The
    runtime opens one connection of its own from it (never a pooled one).
    """

    def __init__(
        self,
        database: object,
        *,
        app: str,
        version: str,
        instance_id: str | None = None,
        schema: str = "zdmigrate",
        heartbeat_interval: float = 10.0,
        ttl_seconds: int = 30,
        poll_interval: float = 1.0,
        start_timeout: float = 5.0,
        retry_interval: float = 0.5,
        retry_interval_max: float = 5.0,
        query_timeout: float = 5.0,
    ) -> None:
        if not app or not version:
            raise ValueError("Runtime needs a non-empty app and version")
        if not _IDENT.match(schema):
            raise ValueError(f"schema {schema!r} is not a plain SQL identifier")
        if ttl_seconds < 1 or heartbeat_interval <= 0 or poll_interval <= 0:
            raise ValueError("ttl_seconds must be >= 1; intervals must be > 0")
        if query_timeout <= 0:
            raise ValueError("query_timeout must be > 0")
        self.app = app
        self.version = version
        self.schema = schema
        self.heartbeat_interval = heartbeat_interval
        self.ttl_seconds = int(ttl_seconds)
        self.poll_interval = poll_interval
        self.start_timeout = start_timeout
        self.retry_interval = retry_interval
        self.retry_interval_max = retry_interval_max
        #: Each of the runtime's own queries must be answered within this, seconds;
        #: silence longer than that (a hung proxy) cuts the connection and reconnects.
        self.query_timeout = query_timeout
        self.host = socket.gethostname()
        self._given_instance_id = instance_id
        self.instance_id = self._make_instance_id()
        # Not plain "app@version": the fleet would also count this connection as a
        # session and remember it for minutes after a clean stop; the heartbeat row
        # is this instance's record.
        self.connect: _source.Connect = _source.connector(
            database, f"zdmigrate-runtime {app}@{version}"
        )
        self.problems = ProblemLog()
        self.shadow_reads = ShadowReadCounts()
        #: Replaced whole, never mutated: readers need no lock.
        self._phases: dict[str, Phase] = {}
        self._version_schemas: list[VersionSchema] = []
        #: What sets the version schemas on the app's connections ("use_search_path"),
        #: and the search_path of the runtime's own connection (the same DSN as the
        #: app's, so an ``options=-csearch_path=...`` shows here). Both go into the
        #: heartbeat, for `zdmigrate gate`.
        self.search_path_source: str | None = None
        self.connection_search_path: str | None = None
        self._worker: Worker | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Runtime:
        """Start heartbeats and the phase cache; wait up to `start_timeout` for phases."""
        with self._lock:
            if self._worker is not None:
                return self
            worker = self._worker = Worker(self)
            _LIVE.add(self)
            worker.start()
        worker.loaded.wait(self.start_timeout)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and delete this instance's row (if the database is reachable)."""
        with self._lock:
            worker, self._worker = self._worker, None
            _LIVE.discard(self)
        if worker is not None:
            worker.stop(timeout)

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._worker is not None

    @property
    def connected(self) -> bool:
        """Whether the background connection is up right now."""
        worker = self._worker
        return worker is not None and worker.connected

    @property
    def reconnect_delay(self) -> float:
        """Seconds the thread waits before its next reconnect attempt after a failure.

        Starts at `retry_interval`, doubles per failed attempt up to
        `retry_interval_max`, and starts again after every successful connection.
        """
        worker = self._worker
        return worker.retry_delay if worker is not None else self.retry_interval

    # -- phases (memory only) --------------------------------------------------

    def phase(self, migration: str) -> Phase:
        """The last completed phase of `migration` as last seen; `pending` if unknown."""
        return self._phases.get(migration, Phase.PENDING)

    def phases(self) -> dict[str, Phase]:
        """Every migration the state schema knows, with its phase (a copy)."""
        return dict(self._phases)

    def search_path(self) -> list[str]:
        """The version schemas this app version puts first on its search_path, in order.

        One per migration in flight (expand done, contract not yet) that renames
        through views and whose compat says this version reads the new names:
        ``["zdm_0003_rename_orders", "zdm_0002_rename_users"]``. Empty when none.
        `zdmigrate.runtime.sqla.use_search_path` applies it to an Engine; without
        SQLAlchemy, prepend it to each connection's search_path yourself.
        """
        return search_path_for(self._version_schemas, self.app, self.version)

    def dual_write(
        self,
        migration: str,
        columns: Mapping[str, str],
        *,
        forward: Mapping[str, Transform] | None = None,
        backward: Mapping[str, Transform] | None = None,
    ) -> DualWrite:
        """A helper that writes both shapes of `columns` ({old: new}) while both exist.

        `forward[old]` turns an old value into the new column's value, `backward[old]`
        a new value into the old column's; both default to the value unchanged.
        """
        return DualWrite(self, migration, columns, forward=forward, backward=backward)

    # -- called by the worker thread ------------------------------------------

    def replace_phases(self, phases: dict[str, Phase]) -> None:
        self._phases = phases

    def replace_version_schemas(self, schemas: list[VersionSchema]) -> None:
        self._version_schemas = schemas

    def heartbeat_info(self) -> dict[str, Any]:
        return {
            "shadow_reads": self.shadow_reads.snapshot(),
            "search_path": {"source": self.search_path_source,
                            "connection": self.connection_search_path,
                            "needed": self.search_path()},
        }

    def send_heartbeat_soon(self) -> None:
        """Ask the thread for a heartbeat now (e.g. to publish shadow-read counts)."""
        worker = self._worker
        if worker is not None:
            worker.request_heartbeat()

    # -- fork ------------------------------------------------------------------

    def _make_instance_id(self) -> str:
        pid = os.getpid()
        if self._given_instance_id is None:
            return f"{self.host}:{pid}"
        if getattr(self, "_pid", pid) != pid:
            return f"{self._given_instance_id}:{pid}"
        return self._given_instance_id

    def _after_fork_in_child(self) -> None:
        worker = self._worker
        self._worker = None
        self._lock = threading.Lock()
        self.problems.reset()
        self.shadow_reads.reset()
        self.instance_id = self._make_instance_id()
        self._pid = os.getpid()
        if worker is None:
            return
        worker.abandon()
        # The phases inherited from the parent are current: no need to wait.
        new = self._worker = Worker(self)
        new.start()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Runtime {self.app}@{self.version} {self.instance_id} {state}>"


_LIVE: weakref.WeakSet[Runtime] = weakref.WeakSet()


def _restart_in_child() -> None:
    for runtime in list(_LIVE):
        runtime._after_fork_in_child()


def _stop_all_at_exit() -> None:
    for runtime in list(_LIVE):
        try:
            runtime.stop(timeout=2.0)
        except Exception:
            pass


os.register_at_fork(after_in_child=_restart_in_child)
atexit.register(_stop_all_at_exit)
