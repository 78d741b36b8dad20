"""Locks under hostile conditions (issue 14 items 4, 11, and the short first lock attempts).

Real concurrent clients; no test asserts a duration: each observes which locks
are held or requested, or how many attempts a run logged.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from tests.helpers import one_migration, settings_for
from zdmigrate import engine
from zdmigrate.errors import LockRetriesExhausted


def test_the_requirement_check_holds_no_access_exclusive_lock_while_it_scans(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int, b int, c int, d int, f int)")
        conn.execute("INSERT INTO t SELECT g, g, g, g, g, g % 10 FROM generate_series(1, 200000) g")
        conn.execute("ANALYZE t")
    uniques = ", ".join(f'ops.AddUnique("t", ["{c}"])' for c in "abcd")
    folder = one_migration(tmp_path, operations=f'[ops.AddColumn("t", "e", "int"), {uniques}]')
    settings = settings_for(db_url, folder)
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def observe() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not done.is_set():
                rows = conn.execute(
                    "SELECT l.mode, a.query FROM pg_locks l JOIN pg_stat_activity a "
                    "ON a.pid = l.pid WHERE l.relation = 't'::regclass AND l.granted "
                    "AND l.mode = 'AccessExclusiveLock' AND a.state = 'active' "
                    "AND a.query ILIKE 'SELECT%'"
                ).fetchall()
                seen.extend(rows)

    observer = threading.Thread(target=observe)
    observer.start()
    try:
        engine.advance(settings, "0001_a", to="expand")
    finally:
        done.set()
        observer.join()
    assert seen == [], seen[:3]


def test_the_requirement_check_still_sees_what_earlier_operations_create(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    folder = one_migration(tmp_path, operations=(
        '[ops.CreateTable("t", sa.Column("id", sa.Integer, primary_key=True),'
        ' sa.Column("a", sa.Integer)), ops.CreateIndex("t_a_idx", "t", ["a"])]'))
    engine.advance(settings_for(db_url, folder), "0001_a", to="expand")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('t_a_idx') IS NOT NULL").fetchone() == (True,)


def test_dropping_an_invalid_leftover_index_keeps_to_the_retry_budget(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int)")
        conn.execute("INSERT INTO t VALUES (1, 1), (2, 1)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY t_a_idx ON t (a)")  # left INVALID
        conn.execute("DELETE FROM t WHERE id = 2")
    folder = one_migration(tmp_path, '''
        def expand(ctx):
            ctx.execute("CREATE UNIQUE INDEX CONCURRENTLY t_a_idx ON t (a)")
    ''')
    settings = settings_for(db_url, folder, lock_timeout=0.1, retry_budget=0.5,
                            retry_backoff=0.05, retry_backoff_max=0.1)
    blocker = psycopg.connect(dsn)
    # if the drop ignored the budget it would wait for the blocker: end it at last, so the
    # test fails instead of hanging
    stopper = threading.Timer(30, lambda: psycopg.connect(dsn, autocommit=True).execute(
        "SELECT pg_terminate_backend(%s)", [blocker.info.backend_pid]))
    try:
        blocker.execute("SELECT * FROM t")  # an open transaction: DROP INDEX CONCURRENTLY waits
        stopper.start()
        log: list[str] = []
        with pytest.raises(LockRetriesExhausted):
            engine.advance(settings, "0001_a", to="expand", log=log.append)
        assert any("retry" in line for line in log), log
    finally:
        stopper.cancel()
        blocker.close()
    engine.advance(settings, "0001_a", to="expand")
    with psycopg.connect(dsn) as conn:
        assert conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_a_idx'::regclass"
        ).fetchone() == (True,)


def test_default_lock_attempts_start_short_and_grow_up_to_lock_timeout(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    """With default settings a waiting ALTER first waits 100 ms, not the whole 2 s."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    folder = one_migration(tmp_path, '''
        def expand(ctx):
            ctx.execute("ALTER TABLE t ADD COLUMN b int")
    ''')
    settings = settings_for(db_url, folder, retry_budget=1.5)
    blocker = psycopg.connect(dsn)
    log: list[str] = []
    try:
        blocker.execute("SELECT * FROM t")
        with pytest.raises(LockRetriesExhausted):
            engine.advance(settings, "0001_a", to="expand", log=log.append)
    finally:
        blocker.close()
    waits = [line for line in log if "lock_timeout" in line and "retry" in line]
    assert waits, log
    assert "after waiting 100ms" in waits[0], waits
    assert any("after waiting 200ms" in line for line in waits), waits
