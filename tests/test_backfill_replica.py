"""The replication-lag throttle against a real streaming replica (tests/fix_replica.py).

Both lag readers run for real: `PrimaryLag` (``pg_stat_replication`` on the
primary, the default) and `ReplicaLag` (the standby's own replay age, when the
backfill is given ``replica_dsn``). Replay is paused with ``pg_wal_replay_pause()``
on the replica, so the lag is real WAL the replica has not applied. Nothing here
asserts a duration: the tests assert what the backfill recorded (its throttle
events) and what it committed while throttled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.fix_replica import Replication
from tests.helpers import rows_done
from zdmigrate.backfill import BackfillEvent, BackfillResult, run_backfill
from zdmigrate.backfill.throttle import LagSource, PrimaryLag, ReplicaLag
from zdmigrate.config import Settings
from zdmigrate.errors import DatabaseUnreachable
from zdmigrate.steps import BackfillStep

pytestmark = pytest.mark.slow

ROWS = 600
MAX_LAG = 0.3  # seconds; a paused replica passes it quickly, a caught-up one reads 0
COUNTING = BackfillStep(
    "items", {"new": "old * 2", "touched": "touched + 1"}, verify="new IS DISTINCT FROM old * 2"
)
READERS = ["primary", "replica"]


def make_table(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, old int NOT NULL, new int, "
                      "touched int NOT NULL DEFAULT 0)")
        conn.execute("INSERT INTO items (id, old) SELECT g, g FROM generate_series(1, %s) g",
                      [ROWS])
        conn.execute("ANALYZE items")


def touched(dsn: str) -> dict[int, int]:
    with psycopg.connect(dsn) as conn:
        return {int(t): int(n) for t, n in
                conn.execute("SELECT touched, count(*) FROM items GROUP BY 1").fetchall()}


def reader(replication: Replication, which: str) -> LagSource:
    """The real lag reader the backfill builds for these options (for the test's own looks)."""
    if which == "replica":
        return ReplicaLag(replication.replica_url)
    return PrimaryLag(replication.primary_url)


def options(replication: Replication, which: str) -> dict[str, Any]:
    chosen: dict[str, Any] = {
        "max_replication_lag": MAX_LAG, "lag_check_interval": 0, "poll_interval": 0.05,
        "batch_size": 100, "max_batch_size": 100,
    }
    if which == "replica":
        chosen["replica_dsn"] = replication.replica_url
    return chosen


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


class Run:
    """A backfill in a thread, its events as they come, its result or error at the end."""

    def __init__(self, replication: Replication, which: str) -> None:
        self.events: list[BackfillEvent] = []
        self.result: BackfillResult | None = None
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(replication, which))
        self._thread.start()

    def _run(self, replication: Replication, which: str) -> None:
        try:
            self.result = run_backfill(
                Settings(database_url=replication.primary_url), migration_id="m1",
                step=COUNTING, reporter=self.events.append, stop=self.stop,
                **options(replication, which),
            )
        except BaseException as exc:
            self.error = exc

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def join(self, timeout: float = 120.0) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.stop.set()
            self._thread.join(30)
            raise AssertionError(f"the backfill did not finish in {timeout:g} s: {self.kinds()}")


def lagging(replication: Replication, which: str) -> None:
    """Pause replay, write on the primary, and wait until the real reader sees the lag."""
    replication.wait_caught_up()  # a replayed transaction gives the replay age a start
    replication.pause_replay()
    source = reader(replication, which)
    try:
        def behind() -> bool:
            with psycopg.connect(replication.primary_dsn, autocommit=True) as conn:
                conn.execute("CREATE TEMP TABLE IF NOT EXISTS wal_maker (x int)")
                conn.execute("INSERT INTO wal_maker VALUES (1)")  # WAL the replica must apply
            return source.lag_seconds() > MAX_LAG

        wait_for(behind, f"the {which} lag reader to see the paused replica behind")
    finally:
        source.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("which", READERS)
def test_backfill_waits_while_the_replica_lags_and_resumes_when_it_catches_up(
    streaming_replica: Replication, which: str
) -> None:
    replication = streaming_replica
    make_table(replication.primary_dsn)
    lagging(replication, which)

    run = Run(replication, which)
    wait_for(lambda: "throttled" in run.kinds() or run.error is not None, "the throttle")
    assert run.error is None, run.error
    # the worker keeps its range alive while it waits: several heartbeats, no batch
    with psycopg.connect(replication.primary_dsn, autocommit=True) as conn:
        first = conn.execute("SELECT max(heartbeat) FROM zdmigrate.backfill_ranges").fetchone()
        wait_for(lambda: conn.execute("SELECT max(heartbeat) FROM zdmigrate.backfill_ranges")
                 .fetchone() != first, "the waiting worker's heartbeat")
    assert rows_done(replication.primary_dsn) == 0
    assert "progress" not in run.kinds()

    replication.resume_replay()
    run.join()
    assert run.error is None, run.error
    assert run.result is not None and run.result.done
    kinds = run.kinds()
    throttled = [e for e in run.events if e.kind == "throttled"]
    assert throttled and throttled[0].rows_done == 0
    assert f"> {MAX_LAG}s" in (throttled[0].message or "")
    assert kinds.index("throttled") < kinds.index("unthrottled") < kinds.index("progress")
    assert touched(replication.primary_dsn) == {1: ROWS}
    replication.wait_caught_up()
    with psycopg.connect(replication.replica_dsn) as conn:  # the replica has it all too
        assert conn.execute("SELECT count(*) FROM items WHERE touched = 1").fetchone() == (ROWS,)


def test_replica_lag_reader_reads_zero_when_caught_up(streaming_replica: Replication) -> None:
    replication = streaming_replica
    make_table(replication.primary_dsn)
    replication.wait_caught_up()
    for which in READERS:
        source = reader(replication, which)
        try:
            wait_for(lambda source=source: source.lag_seconds() == 0.0,  # type: ignore[misc]
                     f"the {which} reader to read 0 on a caught-up replica")
        finally:
            source.close()  # type: ignore[attr-defined]


def test_replica_that_goes_away_stops_a_backfill_that_reads_it(
    streaming_replica: Replication,
) -> None:
    """With ``replica_dsn``, a stopped replica cannot say its lag: the backfill stops
    with an operational error naming it (never runs on blind), keeps what it did,
    and a rerun finishes with every row touched once."""
    replication = streaming_replica
    make_table(replication.primary_dsn)
    lagging(replication, "replica")
    run = Run(replication, "replica")
    wait_for(lambda: "throttled" in run.kinds() or run.error is not None, "the throttle")
    replication.stop_replica()
    run.join()
    assert isinstance(run.error, DatabaseUnreachable), run.error
    assert "cannot read replication lag from" in str(run.error)
    assert rows_done(replication.primary_dsn) == 0

    rerun = run_backfill(Settings(database_url=replication.primary_url), migration_id="m1",
                         step=COUNTING, max_replication_lag=0, poll_interval=0.05)
    assert rerun.done
    assert touched(replication.primary_dsn) == {1: ROWS}


def test_replica_that_goes_away_no_longer_holds_back_a_primary_lag_backfill(
    streaming_replica: Replication,
) -> None:
    """Read from the primary, a stopped replica leaves ``pg_stat_replication``: no
    replica lags any more, so the waiting backfill goes on and finishes."""
    replication = streaming_replica
    make_table(replication.primary_dsn)
    lagging(replication, "primary")
    run = Run(replication, "primary")
    wait_for(lambda: "throttled" in run.kinds() or run.error is not None, "the throttle")
    assert rows_done(replication.primary_dsn) == 0
    replication.stop_replica()
    run.join()
    assert run.error is None, run.error
    assert run.result is not None and run.result.done
    kinds = run.kinds()
    assert kinds.index("throttled") < kinds.index("unthrottled") < kinds.index("progress")
    assert touched(replication.primary_dsn) == {1: ROWS}
