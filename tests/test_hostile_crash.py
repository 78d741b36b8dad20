"""Crash safety under hostile conditions (issue 14 items 1, 13): real SIGKILL, real leftovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.helpers import cli_env, run_cli, write_migration


def _index_migration(tmp_path: Path, unique: bool) -> Path:
    folder = tmp_path / "m"
    folder.mkdir()
    write_migration(folder, "0001_a", f'''
        from zdmigrate import ops
        revision = "0001_a"
        down_revision = None
        operations = [ops.CreateIndex("t_a_idx", "t", ["a"], unique={unique})]
    ''')
    return folder


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


def test_a_killed_runs_lock_is_explained_truthfully_while_its_statement_runs(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int)")
    folder = _index_migration(tmp_path, unique=False)
    env = cli_env(db_url, folder)
    env["ZDMIGRATE_LOCK_TIMEOUT"] = "600s"  # the orphan would wait this long for the snapshot
    holder = psycopg.connect(dsn)
    holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    holder.execute("SELECT count(*) FROM pg_class")
    process = subprocess.Popen([sys.executable, "-m", "zdmigrate", "phase", "advance"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with psycopg.connect(dsn, autocommit=True) as watcher:
            for _ in range(600):
                row = watcher.execute(
                    "SELECT pid FROM pg_stat_activity WHERE query ILIKE "
                    "'CREATE INDEX CONCURRENTLY%%' AND state = 'active'"
                ).fetchone()
                if row:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the build never started")
            orphan = row[0]
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            second = run_cli(["phase", "advance"], env)
            assert second.returncode == 3, (second.stdout, second.stderr)
            assert "released at once" not in second.stderr
            assert f"pg_cancel_backend({orphan})" in second.stderr
            assert "CREATE INDEX CONCURRENTLY" in second.stderr
            watcher.execute("SELECT pg_cancel_backend(%s)", [orphan])
    finally:
        holder.close()
    for _ in range(100):
        rerun = run_cli(["phase", "advance"], env)
        if rerun.returncode != 3:
            break
        time.sleep(0.1)
    assert rerun.returncode == 0, (rerun.stdout, rerun.stderr)


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
