"""The backfill slows down on WAL volume and checkpoint pressure (issue 21, item 3)."""

from __future__ import annotations

import threading
import time

import psycopg

from zdmigrate.backfill import BackfillEvent, run_backfill
from zdmigrate.backfill.throttle import WalReading, WalThrottle, read_wal
from zdmigrate.config import Settings
from zdmigrate.steps import BackfillStep

STEP = BackfillStep(
    "items", {"new": "old * 2", "touched": "touched + 1"}, verify="new IS DISTINCT FROM old * 2"
)
SMALL = {
    "max_replication_lag": 0, "poll_interval": 0.05, "vacuum_every_percent": 0,
    "batch_size": 100, "min_batch_size": 100, "max_batch_size": 100,
}


def make_table(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE items (id bigint PRIMARY KEY, old int NOT NULL, new int, "
            "touched int NOT NULL DEFAULT 0)"
        )
        conn.execute(
            "INSERT INTO items (id, old) SELECT g, g FROM generate_series(1, %s) g", [rows]
        )
        conn.execute("VACUUM ANALYZE items")


def touched(dsn: str) -> dict[int, int]:
    with psycopg.connect(dsn) as conn:
        wrong = conn.execute(
            "SELECT count(*) FROM items WHERE touched = 1 AND new IS DISTINCT FROM old * 2"
        ).fetchone()
        assert wrong == (0,)
        rows = conn.execute("SELECT touched, count(*) FROM items GROUP BY 1").fetchall()
    return {int(t): int(n) for t, n in rows}


def test_a_wal_budget_holds_the_workers_and_says_why(dsn: str, db_url: str) -> None:
    make_table(dsn, 20_000)
    events: list[BackfillEvent] = []
    seen = threading.Event()

    def report(event: BackfillEvent) -> None:
        events.append(event)
        if event.kind == "throttled" and "max_wal_bytes_per_second" in (event.message or ""):
            seen.set()

    stop = threading.Event()
    results = []
    runner = threading.Thread(target=lambda: results.append(run_backfill(
        Settings(database_url=db_url), migration_id="m1", step=STEP, workers=1,
        reporter=report, stop=stop, max_wal_bytes_per_second=1024, lag_check_interval=0.05,
        **SMALL,
    )))
    runner.start()
    try:
        assert seen.wait(60), [(e.kind, e.message) for e in events]
        # the worker now waits out a 5 s wait (1 KiB/s cannot be met soon): let some
        # of it pass, to be counted
        time.sleep(0.5)
    finally:
        stop.set()
        runner.join(60)
    assert not runner.is_alive()
    (result,) = results
    # held back: far from done when stopped, every row it did is right, none twice
    assert result.status == "stopped" and result.rows_done < 20_000
    assert result.wal["wal_throttled_seconds"] > 0 and result.wal["wal_bytes"] > 0
    assert set(touched(dsn)) <= {0, 1}
    with psycopg.connect(dsn) as conn:
        info = conn.execute("SELECT cursor->'info' FROM zdmigrate.backfills").fetchone()
    assert info is not None and info[0]["wal_throttled_seconds"] > 0

    # without the budget the rerun finishes what was left, each row exactly once
    again = run_backfill(Settings(database_url=db_url), migration_id="m1", step=STEP, **SMALL)
    assert again.done and again.verification is not None and again.verification.ok
    assert touched(dsn) == {1: 20_000}
    assert again.wal["wal_throttled_seconds"] == 0


def test_wal_position_checkpoints_and_settings_are_read_from_the_server(dsn: str) -> None:
    """pg_stat_checkpointer on PostgreSQL 17+, pg_stat_bgwriter before."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = read_wal(conn)
        assert before.max_wal_size > 0 and 0 < before.completion_target <= 1
        assert before.redo is not None and before.redo <= before.lsn
        conn.execute("CHECKPOINT")  # a requested checkpoint
        deadline = time.monotonic() + 60
        after = read_wal(conn)
        while after.requested <= before.requested and time.monotonic() < deadline:
            time.sleep(0.1)
            after = read_wal(conn)
    assert after.requested > before.requested
    assert after.redo is not None and after.redo > before.redo
    assert after.checkpoint_age is not None and after.checkpoint_age < 60


def reading(at: float, lsn: int, redo: int, age: float, requested: int) -> WalReading:
    return WalReading(at, lsn, redo, age, timed=0, requested=requested,
                      max_wal_size=1900 * 2**20, completion_target=0.9)  # distance 1000 MiB


def test_checkpoints_driven_by_wal_too_often_slow_the_backfill_down() -> None:
    """The spacing rule's arithmetic, on a sequence of readings (the reading itself is
    tested against the server above)."""
    mib = 2**20
    clock = [0.0]
    feed: list[WalReading] = []
    throttle = WalThrottle(None, max_bytes_per_second=0, min_checkpoint_seconds=30,
                           interval=0, reader=lambda: feed.pop(0))

    def at(lsn: int, redo: int, age: float, requested: int) -> tuple[float, str]:
        clock[0] += 1
        feed.append(reading(clock[0], lsn, redo, age, requested))
        return throttle.check()

    # WAL flows fast, but no checkpoint has been driven by it yet: no wait
    assert at(100 * mib, 0, 5, 1)[0] == 0
    assert throttle.pressure is None
    # a manual checkpoint (little WAL since the last): not pressure
    assert at(120 * mib, 110 * mib, 0, 2)[0] == 0
    assert throttle.pressure is None
    # a checkpoint after 600 MiB of WAL, 8 s after the one before: pressure
    wait, why = at(720 * mib, 710 * mib, 1, 3)
    assert throttle.pressure is not None and throttle.pressure < 30
    assert wait == 0  # 10 MiB since it, 1 s ago: on schedule for 30 s
    # 400 MiB since the last checkpoint 4 s ago: the next would come after 10 s
    wait, why = at(1110 * mib, 710 * mib, 4, 3)
    assert 0 < wait <= WalThrottle.MAX_WAIT
    assert why.startswith("checkpoints every ") and "< 30s" in why
    # once the time catches up (400 MiB in 12 s is 30 s per 1000 MiB) it goes again
    assert at(1110 * mib, 710 * mib, 12.5, 3)[0] == 0


def test_a_wal_budget_over_the_window() -> None:
    mib = 2**20
    feed: list[WalReading] = []
    throttle = WalThrottle(None, max_bytes_per_second=10 * mib, min_checkpoint_seconds=0,
                           interval=0, reader=lambda: feed.pop(0))
    feed.append(reading(0.0, 0, 0, 0, 0))
    assert throttle.check()[0] == 0
    feed.append(reading(1.0, 5 * mib, 0, 1, 0))  # 5 MiB/s: within
    assert throttle.check()[0] == 0
    feed.append(reading(2.0, 40 * mib, 0, 2, 0))  # 40 MiB in 2 s: 2 s over
    wait, why = throttle.check()
    assert 0 < wait <= 2.0 and "max_wal_bytes_per_second" in why


def test_the_governor_keeps_its_workers_while_the_wal_throttle_paces_them(db_url: str) -> None:
    """The WAL throttle holds every worker to the WAL rate it allows; parking one as
    well slowed the backfill below that rate (0.73x the UPDATE at 5M rows against
    1.03x without the hold). While it holds, the governor neither parks a worker
    nor tries another; app lock waits still park one."""
    from types import SimpleNamespace

    from zdmigrate.backfill import upkeep
    from zdmigrate.backfill.runner import _Upkeep

    notes: list[str] = []
    meter = SimpleNamespace(rows_done=0, note=lambda kind, text: notes.append(text))
    wal = SimpleNamespace(throttled_seconds=0.0)
    shared = SimpleNamespace(url=db_url, pids={}, wal=wal, meter=meter, running=2)
    governor = _Upkeep(shared, upkeep.Vacuumer(db_url, None, every_rows=0, cost_delay_ms=0),  # type: ignore[arg-type]
                       workers=3, auto=True)
    try:
        for step in range(8):  # held throughout, long past QUIET: no change at all
            wal.throttled_seconds += 1.0
            meter.rows_done += 1000
            governor._calm_since -= governor.QUIET  # as if a quiet while had passed
            governor._govern()
            assert shared.running == 2, (step, notes)
        assert notes == []
        # once the throttle lets go, a quiet while (and a rate to judge by) brings a
        # try of one more worker
        governor._calm_since -= governor.QUIET
        governor._history.appendleft((time.monotonic() - governor.PROBE, 0))
        governor._govern()
        assert shared.running == 3 and notes[-1].startswith("3 worker(s): trying one more")
    finally:
        governor.wait_vacuum()
