"""Backfill at scale (issue 21): no WAL-flush waits, crash safety of that, ETA,
bloat kept down, workers and batch size chosen from the server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from zdmigrate.backfill import BackfillEvent, run_backfill
from zdmigrate.config import Settings
from zdmigrate.steps import BackfillStep

FAST = {"max_replication_lag": 0, "poll_interval": 0.05}
ROOT = Path(__file__).resolve().parents[1]

# every row is updated once; `sc` records the batch's synchronous_commit
COUNTING = BackfillStep(
    "items",
    {"new": "old * 2", "touched": "touched + 1", "sc": "current_setting('synchronous_commit')"},
    verify="new IS DISTINCT FROM old * 2",
)

CHILD = """
import sys
from zdmigrate.backfill import run_backfill
from zdmigrate.config import Settings
from zdmigrate.steps import BackfillStep
step = BackfillStep("items", {"new": "old * 2", "touched": "touched + 1",
                    "sc": "current_setting('synchronous_commit')"},
                    verify="new IS DISTINCT FROM old * 2")
run_backfill(Settings(database_url=sys.argv[1]), migration_id="m1", step=step, workers=2,
             batch_size=50, min_batch_size=50, max_batch_size=50, max_rows_per_second=4000,
             max_replication_lag=0, poll_interval=0.05, vacuum_every_percent=0)
"""


def make_table(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE items (id bigint PRIMARY KEY, old int NOT NULL, new int, "
            "touched int NOT NULL DEFAULT 0, sc text)"
        )
        conn.execute(
            "INSERT INTO items (id, old) SELECT g, g %% 1000 FROM generate_series(1, %s) g",
            [rows],
        )
        conn.execute("VACUUM ANALYZE items")


def table_state(dsn: str) -> tuple[int, dict[int, int], set[str | None]]:
    with psycopg.connect(dsn) as conn:
        wrong = conn.execute(
            "SELECT count(*) FROM items WHERE new IS DISTINCT FROM old * 2"
        ).fetchone()
        touched = conn.execute("SELECT touched, count(*) FROM items GROUP BY touched").fetchall()
        sc = conn.execute("SELECT DISTINCT sc FROM items").fetchall()
    assert wrong is not None
    return int(wrong[0]), {int(t): int(n) for t, n in touched}, {r[0] for r in sc}


def rows_done(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(rows_done), 0) FROM zdmigrate.backfills"
        ).fetchone()
    return int(row[0]) if row else 0


def spawn(url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url], env=env, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def wait_for_progress(dsn: str, proc: subprocess.Popen[str], at_least: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the backfill exited with {proc.returncode}"
        try:
            if rows_done(dsn) >= at_least:
                return
        except psycopg.errors.UndefinedTable:
            pass
        time.sleep(0.05)
    raise AssertionError("the backfill made no progress")


def test_batches_run_with_synchronous_commit_off(dsn: str, db_url: str) -> None:
    make_table(dsn, 300)
    result = run_backfill(Settings(database_url=db_url), migration_id="m1", step=COUNTING,
                          batch_size=50, **FAST)
    assert result.done
    assert table_state(dsn) == (0, {1: 300}, {"off"})


def test_synchronous_commit_can_be_set_back_on(dsn: str, db_url: str) -> None:
    make_table(dsn, 100)
    run_backfill(Settings(database_url=db_url), migration_id="m1", step=COUNTING,
                 synchronous_commit="on", **FAST)
    assert table_state(dsn)[2] == {"on"}


def test_sigkill_of_the_backfill_then_rerun_leaves_every_row_right_once(
    dsn: str, db_url: str
) -> None:
    make_table(dsn, 3000)
    proc = spawn(db_url)
    try:
        wait_for_progress(dsn, proc, 500)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done_before = rows_done(dsn)
    assert 0 < done_before < 3000
    result = run_backfill(Settings(database_url=db_url), migration_id="m1", step=COUNTING, **FAST)
    assert result.done and result.verification is not None and result.verification.ok
    assert table_state(dsn) == (0, {1: 3000}, {"off"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def own_server() -> Any:
    """A server of this test's own, so it may be stopped in immediate mode."""
    pg_ctl, initdb = shutil.which("pg_ctl"), shutil.which("initdb")
    if pg_ctl is None or initdb is None:
        pytest.skip("needs pg_ctl and initdb on PATH")
    # the server refuses to run as root: as root, run it as the postgres user
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="zdmigrate-crash-pg-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without runuser")
        as_user = [runuser, "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
    data, port = base / "data", _free_port()
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "postgres", "-A", "trust"],
                   check=True, capture_output=True)
    opts = f"-p {port} -k {base} -c listen_addresses='' -c fsync=on"

    def start() -> None:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", opts, "-w", "-l", str(base / "log"),
                        "start"], check=True, capture_output=True)

    def stop(mode: str) -> None:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", mode, "-w", "stop"],
                       check=True, capture_output=True)

    start()
    url = f"postgresql://postgres@/postgres?host={base}&port={port}"
    try:
        yield url, start, stop
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_immediate_server_stop_during_the_backfill_then_rerun_redoes_what_was_lost(
    own_server: Any,
) -> None:
    url, start, stop = own_server
    make_table(url, 3000)
    proc = spawn(url)
    try:
        wait_for_progress(url, proc, 500)
        stop("immediate")  # a crash: commits whose WAL was not flushed are gone
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    start()
    result = run_backfill(Settings(database_url=url), migration_id="m1", step=COUNTING, **FAST)
    assert result.done and result.verification is not None and result.verification.ok
    # each batch was kept or lost with its cursor: no row skipped, none done twice
    assert table_state(url) == (0, {1: 3000}, {"off"})
