"""Crash safety under hostile conditions (issue 14 items 1, 13): real SIGKILL, real leftovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import cli_env, one_migration, run_cli


def _index_migration(tmp_path: Path, unique: bool) -> Path:
    return one_migration(
        tmp_path, operations=f'[ops.CreateIndex("t_a_idx", "t", ["a"], unique={unique})]')


def _index(dsn: str) -> tuple[bool, str] | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indexrelid = to_regclass('t_a_idx')"
        ).fetchone()
    return (bool(row[0]), str(row[1])) if row else None


def test_a_failed_unique_index_build_is_redone_once_the_data_is_fixed(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int)")
        conn.execute("INSERT INTO t VALUES (1, 1), (2, 1), (3, 3)")
    folder = _index_migration(tmp_path, unique=True)
    env = cli_env(db_url, folder)
    first = run_cli(["phase", "advance"], env)
    assert first.returncode in (2, 3), (first.stdout, first.stderr)  # the data stops it
    assert _index(dsn) is not None and _index(dsn)[0] is False  # type: ignore[index]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM t WHERE id = 2")
    second = run_cli(["phase", "advance"], env)
    assert second.returncode == 0, (second.stdout, second.stderr)
    index = _index(dsn)
    assert index is not None and index[0] is True and "UNIQUE" in index[1]


def test_a_user_index_of_the_same_name_is_still_refused_before_anything_runs(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int, b int)")
        conn.execute("CREATE INDEX t_a_idx ON t (b)")
    result = run_cli(["phase", "advance"], cli_env(db_url, _index_migration(tmp_path, False)))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "already taken" in result.stderr


def test_a_run_killed_during_create_index_concurrently_can_be_run_again(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int)")
        conn.execute("INSERT INTO t SELECT g, g FROM generate_series(1, 20000) g")
    folder = _index_migration(tmp_path, unique=False)
    env = cli_env(db_url, folder)
    # the build waits for this snapshot (CONCURRENTLY waits for older snapshots),
    # so the kill lands during the CREATE INDEX CONCURRENTLY, not by luck
    holder = psycopg.connect(dsn)
    holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    holder.execute("SELECT count(*) FROM pg_class")  # holds its snapshot until it ends
    process = subprocess.Popen(
        [sys.executable, "-m", "zdmigrate", "phase", "advance"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        with psycopg.connect(dsn, autocommit=True) as watcher:
            for _ in range(600):
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE "
                    "'CREATE INDEX CONCURRENTLY%%' AND state = 'active'"
                ).fetchone()
                if row and row[0]:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the build never started")
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        holder.close()  # the orphaned backend now finishes (or fails) the build on its own
    for _ in range(200):
        rerun = run_cli(["phase", "advance"], env)
        if rerun.returncode != 3 or "holds the lock" not in rerun.stderr:
            break
        time.sleep(0.1)  # the orphaned backend still holds the run lock
    assert rerun.returncode == 0, (rerun.stdout, rerun.stderr)
    index = _index(dsn)
    assert index is not None and index[0] is True and "(a)" in index[1]


def _start_blocked_build(tmp_path: Path, db_url: str, dsn: str):  # type: ignore[no-untyped-def]
    """A run whose CREATE INDEX CONCURRENTLY waits for the snapshot `holder` keeps open."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int)")
    folder = _index_migration(tmp_path, unique=False)
    env = cli_env(db_url, folder)
    env["ZDMIGRATE_LOCK_TIMEOUT"] = "600s"  # the build would wait this long for the snapshot
    holder = psycopg.connect(dsn)
    holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    holder.execute("SELECT count(*) FROM pg_class")
    process = subprocess.Popen([sys.executable, "-m", "zdmigrate", "phase", "advance"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return env, holder, process


def _building_backend(watcher: psycopg.Connection[Any]) -> int:
    for _ in range(1200):
        row = watcher.execute(
            "SELECT pid FROM pg_stat_activity WHERE query ILIKE "
            "'CREATE INDEX CONCURRENTLY%%' AND state = 'active'"
        ).fetchone()
        if row:
            return int(row[0])
        time.sleep(0.05)
    pytest.fail("the build never started")


def test_a_stuck_runs_lock_is_explained_truthfully_while_its_statement_runs(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    """A run that still has its connection (here: stopped) is named, with its statement and
    the way to end it; nothing claims the lock is freed at once."""
    env, holder, process = _start_blocked_build(tmp_path, db_url, dsn)
    try:
        with psycopg.connect(dsn, autocommit=True) as watcher:
            backend = _building_backend(watcher)
            os.kill(process.pid, signal.SIGSTOP)
            second = run_cli(["phase", "advance"], env)
            assert second.returncode == 3, (second.stdout, second.stderr)
            assert "released at once" not in second.stderr
            assert f"pg_cancel_backend({backend})" in second.stderr
            assert "CREATE INDEX CONCURRENTLY" in second.stderr
            assert "ends the statement within seconds" in second.stderr
    finally:
        process.kill()
        process.wait()
        holder.close()


@pytest.mark.pg(">= 14")
def test_a_killed_runs_backend_ends_its_statement_and_frees_the_lock_by_itself(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    """Issue 14 item 13: after a SIGKILL the orphaned backend used to wait on, holding the
    run lock, for as long as the blocker stayed. Now it notices its client is gone and ends
    the statement by itself, while the blocker is still there; nobody cancels anything."""
    env, holder, process = _start_blocked_build(tmp_path, db_url, dsn)
    try:
        with psycopg.connect(dsn, autocommit=True) as watcher:
            backend = _building_backend(watcher)
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            for _ in range(1200):  # up to 60 s; it takes about a second
                row = watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                                      [backend]).fetchone()
                if row == (0,):
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the orphaned backend kept running its statement")
            assert not holder.closed  # the snapshot it waited for is still held
    finally:
        holder.close()
    rerun = run_cli(["phase", "advance"], env)
    assert rerun.returncode == 0, (rerun.stdout, rerun.stderr)
    index = _index(dsn)
    assert index is not None and index[0] is True


def test_the_backfill_total_does_not_grow_when_a_stopped_backfill_resumes(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    """Each resume used to estimate again from a table its own updates had bloated."""
    import threading

    from tests.helpers import settings_for
    from zdmigrate import backfill
    from zdmigrate.steps import BackfillStep

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int, b int)")
        conn.execute("INSERT INTO t SELECT g, g, NULL FROM generate_series(1, 20000) g")
        conn.execute("VACUUM ANALYZE t")
    settings = settings_for(db_url, tmp_path)
    step = BackfillStep("t", {"b": "a"}, where="b IS NULL", schema="public")
    totals: list[int | None] = []
    for _ in range(4):
        stop = threading.Event()

        def report(event: backfill.BackfillEvent, stop: threading.Event = stop) -> None:
            if event.kind == "progress":
                totals.append(event.rows_total)
                stop.set()

        backfill.run_backfill(settings, migration_id="0001_a", step=step, reporter=report,
                              stop=stop, verify=False, batch_size=500, max_batch_size=500)
        with psycopg.connect(dsn, autocommit=True) as conn:  # the app rewrites rows meanwhile
            conn.execute("UPDATE t SET a = a WHERE id % 2 = 0")
    assert totals and all(total is not None for total in totals)
    assert max(t for t in totals if t is not None) <= 25000, totals
