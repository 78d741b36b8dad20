"""Rollback while a backfill runs elsewhere: refused while its workers live; progress reset after.

Before: the rollback went through, the backfill died, its cursor survived, and
the next backfill resumed from it and reported every row done while the rows
before the cursor were never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.helpers import rows_done
from tests.test_backfill_cli import email_project
from zdmigrate import engine
from zdmigrate.config import Settings
from zdmigrate.errors import OperationalError, PhaseRefused

ROOT = Path(__file__).resolve().parents[1]
ROWS = 3000


@pytest.fixture
def project(tmp_path: Path, dsn: str) -> Path:
    return email_project(tmp_path, dsn, ROWS)


def start_slow_backfill(db_url: str, folder: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZDMIGRATE_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    return subprocess.Popen(
        [sys.executable, "-m", "zdmigrate", "--database-url", db_url, "--migrations",
         str(folder), "backfill", "0001_email_lower", "--max-rows-per-second", "300",
         "--batch-size", "50", "--min-batch-size", "10", "--max-batch-size", "50",
         "--max-replication-lag", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_rollback_refuses_a_live_backfill_then_resets_its_progress(
    project: Path, db_url: str, dsn: str
) -> None:
    settings = Settings(database_url=db_url, migrations=project)
    engine.advance(settings, to="dual-write")
    worker = start_slow_backfill(db_url, project)
    try:
        deadline = time.monotonic() + 60
        while rows_done(dsn, "backfill_ranges") == 0:
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, "the backfill never started"
            time.sleep(0.05)
        with pytest.raises(PhaseRefused) as refused:
            engine.rollback(settings, "0001_email_lower", to="pending")
        assert [b.check for b in refused.value.blockers] == ["backfill-running"]
        assert "zdmigrate backfill 0001_email_lower --pause" in refused.value.blockers[0].message
        assert worker.poll() is None  # the backfill was left alone
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate()
    # the worker is dead: its claimed range and cursor stay behind
    with psycopg.connect(dsn, autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM pg_stat_activity "
                           "WHERE application_name = 'zdmigrate-backfill'").fetchone() != (0,):
            time.sleep(0.02)
    done_before = rows_done(dsn, "backfill_ranges")
    assert 0 < done_before < ROWS

    engine.rollback(settings, "0001_email_lower", to="pending")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM zdmigrate.backfills").fetchone() == (0,)

    engine.advance(settings, to="dual-write")
    result = engine.backfill(settings, "0001_email_lower", max_replication_lag=0)
    assert result.results[0].rows_updated == ROWS
    with psycopg.connect(dsn) as conn:
        assert conn.execute(
            "SELECT count(*) FROM users WHERE email_lower IS DISTINCT FROM lower(email)"
        ).fetchone() == (0,)


def test_a_worker_whose_backfill_was_reset_stops_and_says_so(dsn: str, db_url: str) -> None:
    """The race the refusal cannot close (a worker between two claims when the rollback
    commits): the worker must not report the backfill done."""
    import threading

    from tests.test_backfill_concurrency import COUNTING, make_table
    from zdmigrate.backfill import run_backfill
    from zdmigrate.state import Store

    make_table(dsn, 2000)
    outcome: list[object] = []

    def backfill() -> None:
        try:
            outcome.append(run_backfill(
                Settings(database_url=db_url), migration_id="m1", step=COUNTING,
                max_rows_per_second=400, batch_size=20, min_batch_size=10, max_batch_size=20,
                max_replication_lag=0,
            ))
        except BaseException as exc:  # the test looks at it below
            outcome.append(exc)

    worker = threading.Thread(target=backfill)
    worker.start()
    deadline = time.monotonic() + 60
    while rows_done(dsn, "backfill_ranges") == 0:
        assert time.monotonic() < deadline and worker.is_alive(), outcome
        time.sleep(0.05)
    with psycopg.connect(dsn) as conn:  # what a rollback below backfill commits
        Store(conn, "zdmigrate").backfills.delete_migration("m1")
    worker.join(60)
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], OperationalError), outcome
    assert "was reset while it ran" in outcome[0].message


def test_a_reset_between_reading_the_backfill_and_locking_its_frontier_is_a_reset(
    dsn: str, db_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The narrowest window of that race (seen in CI): the rollback's delete commits
    after a claim read the backfill's row and before it locked the frontier. The claim
    must say the backfill was reset, not fail an assertion."""
    from tests.test_backfill_concurrency import COUNTING, make_table
    from zdmigrate.backfill import run_backfill
    from zdmigrate.backfill.claims import BackfillReset, Claims
    from zdmigrate.state import Store

    make_table(dsn, 200)
    # a first run creates the backfill's row and finishes nothing (stopped at once)
    import threading

    stop = threading.Event()
    stop.set()
    run_backfill(Settings(database_url=db_url), migration_id="m1", step=COUNTING, stop=stop,
                 max_replication_lag=0)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM zdmigrate.backfills").fetchone() == (1,)

    read, claim = Claims.read, Claims.claim
    in_claim = threading.Event()

    def read_then_reset(self: Claims, conn: psycopg.Connection[object]) -> object:
        row = read(self, conn)
        if in_claim.is_set():  # inside claim(): the rollback commits right after the read
            in_claim.clear()
            with psycopg.connect(dsn, autocommit=True) as other:
                Store(other, "zdmigrate").backfills.delete_migration("m1")
        return row

    def claiming(self: Claims, *args: object, **kw: object) -> object:
        in_claim.set()
        return claim(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Claims, "claim", claiming)
    monkeypatch.setattr(Claims, "read", read_then_reset)
    with pytest.raises(BackfillReset):
        run_backfill(Settings(database_url=db_url), migration_id="m1", step=COUNTING,
                     max_replication_lag=0, workers=1)
