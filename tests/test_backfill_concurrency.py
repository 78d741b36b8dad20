"""Backfill under real concurrency: app writers, SIGKILLed workers, several worker processes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.helpers import rows_done
from zdmigrate.backfill import BackfillEvent, run_backfill
from zdmigrate.config import Settings
from zdmigrate.steps import BackfillStep

ROOT = Path(__file__).resolve().parents[1]

# A worker process: optionally waits at a barrier (a shared advisory lock the test
# holds), then runs the backfill and prints its result as JSON.
WORKER = """
import json, sys
import psycopg
from zdmigrate.backfill import run_backfill
from zdmigrate.config import Settings
from zdmigrate.steps import BackfillStep
url, options, barrier = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "1"
if barrier:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock_shared(4242)")
step = BackfillStep("items", {"new": "old * 2", "touched": "touched + 1"},
                    verify="new IS DISTINCT FROM old * 2")
result = run_backfill(Settings(database_url=url), migration_id="m1", step=step, **options)
print(json.dumps({"status": result.status, "batches": result.batches}))
"""

COUNTING = BackfillStep(
    "items", {"new": "old * 2", "touched": "touched + 1"}, verify="new IS DISTINCT FROM old * 2"
)


def make_table(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE items (id bigint PRIMARY KEY, old int NOT NULL, new int, "
            "touched int NOT NULL DEFAULT 0)"
        )
        conn.execute(
            "INSERT INTO items (id, old) SELECT g, g FROM generate_series(1, %s) g", [rows]
        )
        conn.execute("ANALYZE items")


def start_worker(db_url: str, options: dict[str, object], barrier: bool = False) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, db_url, json.dumps(options), "1" if barrier else "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )


def batches_of(dsn: str, pid: int) -> int:
    """Batches committed by the worker process `pid` (its owner ids are host:pid:...)."""
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regclass('zdmigrate.backfill_ranges')").fetchone() == (None,):
            return 0
        row = conn.execute(
            "SELECT coalesce(sum(batches), 0) FROM zdmigrate.backfill_ranges "
            "WHERE split_part(owner, ':', 2) = %s",
            [str(pid)],
        ).fetchone()
    return int(row[0]) if row else 0


def holds_a_range(dsn: str, pid: int) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM zdmigrate.backfill_ranges WHERE status = 'claimed' "
            "AND split_part(owner, ':', 2) = %s",
            [str(pid)],
        ).fetchone()
    return bool(row and row[0])


def wait_for_backends_gone(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        while conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'zdmigrate-backfill'"
        ).fetchone() != (0,):
            time.sleep(0.02)


def assert_every_row_done_once(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn) as conn:
        counts = dict(conn.execute("SELECT touched, count(*) FROM items GROUP BY 1").fetchall())
        wrong = conn.execute("SELECT count(*) FROM items WHERE new IS DISTINCT FROM old * 2")
        assert wrong.fetchone() == (0,)
    assert counts == {1: rows}


def test_concurrent_app_writers_never_lose_a_row(dsn: str, db_url: str) -> None:
    """App writers (dual-writing through a sync trigger) update and insert while
    two workers backfill; afterwards every row is right, none was overwritten."""
    make_table(dsn, 6000)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """CREATE FUNCTION items_sync() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN NEW.new := NEW.old * 2; RETURN NEW; END $$"""
        )
        conn.execute(
            "CREATE TRIGGER items_sync BEFORE INSERT OR UPDATE OF old ON items "
            "FOR EACH ROW EXECUTE FUNCTION items_sync()"
        )
    stop = threading.Event()
    errors: list[BaseException] = []
    writes = [0]

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                while not stop.is_set():
                    if rng.random() < 0.8:
                        conn.execute(
                            "UPDATE items SET old = old + 1 WHERE id = %s", [rng.randint(1, 6000)]
                        )
                    else:
                        conn.execute(
                            "INSERT INTO items (id, old) VALUES (%s, %s)",
                            [1_000_000 * (seed + 1) + writes[0], rng.randint(1, 100)],
                        )
                    writes[0] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    step = BackfillStep("items", {"new": "old * 2"}, where="new IS NULL")
    try:
        result = run_backfill(
            Settings(database_url=db_url), migration_id="m1", step=step, workers=2,
            batch_size=100, max_batch_size=400, chunk_rows=1000, max_replication_lag=0,
            poll_interval=0.05,
        )
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    assert result.done and writes[0] > 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute(
            "SELECT count(*) FROM items WHERE new IS DISTINCT FROM old * 2"
        ).fetchone() == (0,)
        # rows the writers updated were fixed by the trigger and skipped by the backfill
        total = conn.execute("SELECT count(*) FROM items").fetchone()
    assert total is not None and result.rows_updated < total[0]


def test_sigkill_at_random_moments_then_resume(dsn: str, db_url: str) -> None:
    """Kill a worker process four times in the middle of its batches; a last run
    resumes (taking over the dead workers' ranges): every row done exactly once."""
    rows = 20_000
    make_table(dsn, rows)
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    options = {
        "max_replication_lag": 0, "batch_size": 100, "max_batch_size": 200, "chunk_rows": 1500,
        "max_rows_per_second": 4000, "poll_interval": 0.05, "lease_seconds": 30,
    }
    for _ in range(4):
        worker = start_worker(db_url, options)
        while batches_of(dsn, worker.pid) == 0:  # it is committing batches now
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.5))
        while not holds_a_range(dsn, worker.pid):  # not in the pause between two ranges
            time.sleep(0.002)
        worker.send_signal(signal.SIGKILL)
        worker.communicate()
        wait_for_backends_gone(dsn)  # a COMMIT sent just before the kill lands first
    done = rows_done(dsn)
    assert 0 < done < rows, f"seed {seed}"
    with psycopg.connect(dsn) as conn:
        orphans = conn.execute(
            "SELECT count(*) FROM zdmigrate.backfill_ranges WHERE status = 'claimed'"
        ).fetchone()
    assert orphans is not None and orphans[0] >= 1  # the last victim held a range
    events: list[BackfillEvent] = []
    result = run_backfill(
        Settings(database_url=db_url), migration_id="m1", step=COUNTING, reporter=events.append,
        max_replication_lag=0, poll_interval=0.05, lease_seconds=30,
    )
    assert result.done, f"seed {seed}"
    assert any("took over range" in (e.message or "") for e in events)
    assert_every_row_done_once(dsn, rows)


def test_two_worker_processes_share_the_work(dsn: str, db_url: str) -> None:
    rows = 20_000
    make_table(dsn, rows)
    options = {
        "max_replication_lag": 0, "batch_size": 100, "max_batch_size": 300, "chunk_rows": 1000,
        "poll_interval": 0.05,
    }
    with psycopg.connect(dsn, autocommit=True) as gate:
        gate.execute("SELECT pg_advisory_lock(4242)")
        workers = [start_worker(db_url, options, barrier=True) for _ in range(2)]
        while True:  # both are waiting at the barrier
            waiting = gate.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()
            if waiting == (2,):
                break
            for w in workers:
                assert w.poll() is None, w.stderr.read() if w.stderr else ""
            time.sleep(0.02)
        gate.execute("SELECT pg_advisory_unlock(4242)")
        outputs = []
        for w in workers:
            out, err = w.communicate(timeout=300)
            assert w.returncode == 0, err
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    assert [o["status"] for o in outputs] == ["done", "done"]
    assert all(o["batches"] > 0 for o in outputs)  # both did part of the work
    assert_every_row_done_once(dsn, rows)
    with psycopg.connect(dsn) as conn:
        owners = conn.execute(
            "SELECT count(DISTINCT split_part(owner, ':', 2)) FROM zdmigrate.backfill_ranges"
        ).fetchone()
    assert owners == (2,)


@pytest.mark.parametrize("workers", [3])
def test_a_worker_whose_range_was_taken_over_is_fenced_out(
    dsn: str, db_url: str, workers: int
) -> None:
    """A worker whose range was taken over (thought dead) cannot apply a batch over
    its successor: the fence makes its batch roll back."""
    make_table(dsn, 2000)
    result = run_backfill(
        Settings(database_url=db_url), migration_id="m1", step=COUNTING, workers=workers,
        batch_size=50, chunk_rows=300, max_replication_lag=0, poll_interval=0.05,
    )
    assert result.done
    # steal every range, as a takeover would, then check the old owner is fenced out
    from zdmigrate.backfill.claims import Claim, Claims, RangeLost

    claims = Claims("zdmigrate", "m1", COUNTING.key, "someone-else", 60)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE zdmigrate.backfill_ranges SET owner = 'thief'")
        with pytest.raises(RangeLost), conn.transaction():
            claims.fence(conn, Claim(1, None, None, None))
    assert_every_row_done_once(dsn, 2000)


def claimed_range_mid_way(dsn: str, pid: int) -> int | None:
    """The range `pid` holds and has committed a batch of, but not half (batches of 50
    rows in ranges of 1000: far from its end, so a kill now lands mid-range)."""
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regclass('zdmigrate.backfill_ranges')").fetchone() == (None,):
            return None
        row = conn.execute(
            "SELECT range_no FROM zdmigrate.backfill_ranges WHERE status = 'claimed' "
            "AND batches BETWEEN 1 AND 10 AND split_part(owner, ':', 2) = %s",
            [str(pid)],
        ).fetchone()
    return int(row[0]) if row else None


def test_a_killed_worker_process_range_is_finished_by_the_others(dsn: str, db_url: str) -> None:
    """Three worker processes; one is SIGKILLed half-way through a range; the two
    others take that range over from its saved cursor and finish everything: the
    killed range ends done by a survivor, and every row was touched exactly once."""
    rows = 12_000
    make_table(dsn, rows)
    options = {
        "max_replication_lag": 0, "batch_size": 50, "max_batch_size": 50, "chunk_rows": 1000,
        "max_rows_per_second": 1500, "poll_interval": 0.05,
    }
    with psycopg.connect(dsn, autocommit=True) as gate:
        gate.execute("SELECT pg_advisory_lock(4242)")
        workers = [start_worker(db_url, options, barrier=True) for _ in range(3)]
        while gate.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone() != (3,):
            for w in workers:
                assert w.poll() is None, w.stderr.read() if w.stderr else ""
            time.sleep(0.02)
        gate.execute("SELECT pg_advisory_unlock(4242)")
    try:
        victim, survivors = workers[0], workers[1:]
        deadline = time.monotonic() + 120
        while (killed_range := claimed_range_mid_way(dsn, victim.pid)) is None:
            assert victim.poll() is None, "the victim finished before it could be killed"
            assert time.monotonic() < deadline, "the victim never got half-way through a range"
            time.sleep(0.002)
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
        with psycopg.connect(dsn) as conn:
            before = conn.execute(
                "SELECT status, batches, split_part(owner, ':', 2) FROM zdmigrate.backfill_ranges "
                "WHERE range_no = %s", [killed_range]).fetchone()
        assert before is not None and before[0] == "claimed" and before[2] == str(victim.pid), before
        outputs = []
        for w in survivors:
            out, err = w.communicate(timeout=300)
            assert w.returncode == 0, err
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.communicate()
    assert [o["status"] for o in outputs] == ["done", "done"]
    with psycopg.connect(dsn) as conn:
        after = conn.execute(
            "SELECT status, split_part(owner, ':', 2) FROM zdmigrate.backfill_ranges "
            "WHERE range_no = %s", [killed_range]).fetchone()
        unfinished = conn.execute(
            "SELECT count(*) FROM zdmigrate.backfill_ranges WHERE status <> 'done'").fetchone()
    assert after is not None and after[0] == "done"
    assert after[1] in {str(w.pid) for w in survivors}, after
    assert unfinished == (0,)
    assert_every_row_done_once(dsn, rows)
