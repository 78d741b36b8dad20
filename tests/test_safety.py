"""Safe execution: lock-timeout retries, no lock queueing, one run at a time, resume after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.helpers import (
    cli_env,
    copy_example,
    declare_deployed,
    run_cli,
    settings_for,
    write_migration,
)
from zdmigrate import engine
from zdmigrate.errors import LockRetriesExhausted

ADD_COLUMN = '''
revision = "0003_add_nickname"
down_revision = "0002_rename_users_name"

def expand(ctx):
    ctx.execute("ALTER TABLE users ADD COLUMN nickname text")

def rollback_expand(ctx):
    ctx.execute("ALTER TABLE users DROP COLUMN IF EXISTS nickname")
'''


def _prepared(tmp_path: Path, db_url: str, dsn: str, body: str = ADD_COLUMN) -> Path:
    folder = copy_example(tmp_path, upto="0002_rename_users_name")
    write_migration(folder, "0003_add_nickname", body)
    settings = settings_for(db_url, folder)
    engine.advance(settings)  # 0001 complete
    declare_deployed(settings)
    engine.advance(settings, "0002_rename_users_name", to="contract")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO users (full_name, email) VALUES ('Ann', 'a@x')")
    return folder


def _has_column(dsn: str, column: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM information_schema.columns "
                           "WHERE table_name = 'users' AND column_name = %s", [column]).fetchone()
    return bool(row and row[0])


def test_blocked_ddl_retries_and_readers_never_queue_behind_it(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    folder = _prepared(tmp_path, db_url, dsn)
    settings = settings_for(db_url, folder, lock_timeout=0.2, retry_backoff=0.05,
                            retry_backoff_max=0.2)
    hold_for = 3.0
    blocker = psycopg.connect(dsn)
    blocker.execute("SELECT * FROM users")  # an open transaction holding ACCESS SHARE
    waits: list[float] = []
    stop = threading.Event()

    def reader() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                started = time.monotonic()
                conn.execute("SELECT count(*) FROM users").fetchone()
                waits.append(time.monotonic() - started)
                time.sleep(0.02)

    logs: list[str] = []
    threading.Thread(target=reader, daemon=True).start()
    releaser = threading.Timer(hold_for, blocker.rollback)
    releaser.start()
    try:
        engine.advance(settings, "0003_add_nickname", log=logs.append)
    finally:
        stop.set()
        releaser.cancel()
        blocker.close()
    assert _has_column(dsn, "nickname")
    retries = [line for line in logs if "lock_timeout on" in line]
    assert len(retries) >= 3  # it kept retrying while the blocker held its lock
    assert waits
    # Each retry waits in the lock queue for at most lock_timeout (0.2s), so a reader
    # queued behind the ALTER waits about that long, never the blocker's whole 3s.
    assert max(waits) < hold_for / 2


def test_retry_budget_exhausted_exits_3_with_nothing_half_done(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    folder = _prepared(tmp_path, db_url, dsn)
    settings = settings_for(db_url, folder, lock_timeout=0.1, retry_budget=1.0,
                            retry_backoff=0.05)
    with psycopg.connect(dsn) as blocker:
        blocker.execute("SELECT * FROM users")
        with pytest.raises(LockRetriesExhausted) as info:
            engine.advance(settings, "0003_add_nickname")
        assert info.value.exit_code == 3
        blocker.rollback()
    assert not _has_column(dsn, "nickname")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT phase FROM zdmigrate.migrations WHERE id = '0003_add_nickname'"
                            ).fetchone() == ("pending",)
        assert conn.execute("SELECT outcome FROM zdmigrate.phase_log "
                            "WHERE migration_id = '0003_add_nickname' ORDER BY id DESC LIMIT 1"
                            ).fetchone() == ("failed",)
    engine.advance(settings, "0003_add_nickname")  # the blocker is gone: it goes through
    assert _has_column(dsn, "nickname")


def test_second_concurrent_advance_exits_3_and_names_the_holder(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    folder = _prepared(tmp_path, db_url, dsn)
    env = cli_env(db_url, folder)
    env["ZDMIGRATE_LOCK_TIMEOUT"] = "0.2s"
    env["ZDMIGRATE_ACTOR"] = "first-run"
    with psycopg.connect(dsn) as blocker:
        blocker.execute("SELECT * FROM users")  # keeps the first run busy retrying
        first = subprocess.Popen([sys.executable, "-m", "zdmigrate", "phase", "advance"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(dsn, "SELECT count(*) FROM zdmigrate.run_lock", 1)
            env2 = dict(env, ZDMIGRATE_ACTOR="second-run")
            second = run_cli(["phase", "advance"], env2)
            assert second.returncode == 3
            assert "another zdmigrate run holds the lock" in second.stderr
            assert "phase advance" in second.stderr and "first-run" in second.stderr
        finally:
            blocker.rollback()
        _, first_err = first.communicate(timeout=60)
        assert first.returncode == 0, first_err
    assert _has_column(dsn, "nickname")


MANY_STEPS = '''
revision = "0003_add_nickname"
down_revision = "0002_rename_users_name"

def expand(ctx):
    for i in range(12):
        ctx.execute(f"ALTER TABLE users ADD COLUMN extra_{i} int")
        ctx.execute("SELECT pg_sleep(0.15)")

def rollback_expand(ctx):
    for i in range(12):
        ctx.execute(f"ALTER TABLE users DROP COLUMN IF EXISTS extra_{i}")
'''


@pytest.mark.parametrize("kill_after_steps", [3, 9])
def test_killed_run_finishes_on_rerun_without_repeating_steps(
    tmp_path: Path, db_url: str, dsn: str, kill_after_steps: int
) -> None:
    folder = _prepared(tmp_path, db_url, dsn, MANY_STEPS)
    env = cli_env(db_url, folder)
    run = subprocess.Popen([sys.executable, "-m", "zdmigrate", "phase", "advance"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(dsn, "SELECT count(*) FROM zdmigrate.steps WHERE migration_id = '0003_add_nickname'",
              kill_after_steps)
    os.kill(run.pid, signal.SIGKILL)
    run.wait(10)
    with psycopg.connect(dsn) as conn:
        done = conn.execute("SELECT count(*) FROM zdmigrate.steps "
                            "WHERE migration_id = '0003_add_nickname'").fetchone()
        assert done is not None and 0 < done[0] < 24
    rerun = run_cli(["phase", "advance"], env)
    # a repeated ADD COLUMN would fail with "already exists": every done step was skipped
    assert rerun.returncode == 0, rerun.stderr
    assert "already done" in rerun.stdout
    assert all(_has_column(dsn, f"extra_{i}") for i in range(12))
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT phase FROM zdmigrate.migrations WHERE id = '0003_add_nickname'"
                            ).fetchone() == ("contract",)
        assert conn.execute("SELECT count(*) FROM zdmigrate.steps").fetchone() == (0,)


INDEX = '''
revision = "0003_add_nickname"
down_revision = "0002_rename_users_name"

def expand(ctx):
    ctx.execute("CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email)")

def rollback_expand(ctx):
    ctx.execute("DROP INDEX CONCURRENTLY IF EXISTS users_email_key")
'''


def test_invalid_index_from_a_failed_build_is_dropped_before_the_retry(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    folder = _prepared(tmp_path, db_url, dsn, INDEX)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO users (full_name, email) VALUES ('Bob', 'dup@x'), ('Bo', 'dup@x')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email)")
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                            "'users_email_key'::regclass").fetchone() == (False,)
        conn.execute("DELETE FROM users WHERE full_name = 'Bo'")
    engine.advance(settings_for(db_url, folder), "0003_add_nickname")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                            "'users_email_key'::regclass").fetchone() == (True,)


def _wait_for(dsn: str, query: str, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(dsn) as conn:
                row = conn.execute(query.encode()).fetchone()
            if row and row[0] >= at_least:
                return
        except psycopg.errors.UndefinedTable:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {query} >= {at_least}")
