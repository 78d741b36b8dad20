"""Chaos: a long transaction in the way of expand and contract, two runs at once, contract too early.

All under live shop traffic, through the real CLI (`python -m zdmigrate`), with
the model check at the end. test_safety.py shows the retry and the run lock on
a bare table; these show what the shop sees while they happen.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests import sim
from tests.helpers import cli_env, run_cli
from zdmigrate.phases import Phase

pytestmark = pytest.mark.slow

LOCK_TIMEOUT = 0.2


def _shop(tmp_path: Path, db_url: str, dsn: str, **migration_options: object
          ) -> tuple[dict[str, str], sim.Model]:
    folder = sim.shop_migrations(tmp_path, **migration_options)  # type: ignore[arg-type]
    sim.fleet_config(tmp_path)
    env = cli_env(db_url, folder)
    env["ZDMIGRATE_TEST_CWD"] = str(tmp_path)
    done = run_cli(["phase", "advance", "0001_create_users"], env)
    assert done.returncode == 0, done.stderr
    model = sim.Model()
    model.seed(dsn, 500)
    return env, model


def _advance(env: dict[str, str], to: Phase) -> subprocess.CompletedProcess[str]:
    return run_cli(["phase", "advance", sim.RENAME, "--to", to.value], env)


def _to_new_version(fleet: sim.Fleet) -> None:
    """The deploy of 2.0: every older instance leaves, two 2.0 instances arrive."""
    for instance in list(fleet.live):
        fleet.stop(instance)
    fleet.start(sim.NEW, 2, rate=40)
    time.sleep(1.2)  # the old versions' sessions are remembered for session_ttl (1s)


def _shape(dsn: str) -> dict[str, object]:
    """What expand and contract change, to show that nothing was half-done."""
    with psycopg.connect(dsn) as conn:
        return {
            "name": sim.has_column(conn, "name"),
            "full_name": sim.has_column(conn, "full_name"),
            "full_name not null": conn.execute(
                "SELECT coalesce(bool_or(attnotnull), false) FROM pg_attribute "
                "WHERE attrelid = 'users'::regclass AND attname = 'full_name'").fetchone(),
            "triggers": conn.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = "
                                     "'users'::regclass AND NOT tgisinternal").fetchone(),
            "checks": conn.execute("SELECT count(*) FROM pg_constraint WHERE conrelid = "
                                   "'users'::regclass AND contype = 'c'").fetchone(),
            "steps done": conn.execute("SELECT count(*) FROM zdmigrate.steps").fetchone(),
            "phase": sim.phase_of(dsn),
        }


def _waiting_on_a_lock(dsn: str) -> bool:
    return bool(sim.scalar(dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name "
                                "LIKE 'zdmigrate%' AND wait_event_type = 'Lock'"))


@pytest.mark.parametrize("outcome", ["released", "budget spent"])
@pytest.mark.parametrize("phase", [Phase.EXPAND, Phase.CONTRACT])
def test_long_transaction_in_the_way_of_expand_and_contract(
    tmp_path: Path, db_url: str, dsn: str, phase: Phase, outcome: str
) -> None:
    env, model = _shop(tmp_path, db_url, dsn)
    hold = 4.0
    env.update(ZDMIGRATE_LOCK_TIMEOUT=f"{LOCK_TIMEOUT}s", ZDMIGRATE_RETRY_BACKOFF="0.05s",
               ZDMIGRATE_RETRY_BACKOFF_MAX="0.2s",
               ZDMIGRATE_RETRY_BUDGET="60s" if outcome == "released" else f"{hold}s")
    with sim.running_fleet(db_url, model) as fleet:
        fleet.start(sim.OLD, 1)
        fleet.start(sim.DUAL, 2)
        if phase is Phase.CONTRACT:
            assert _advance(env, Phase.SWITCH_READ).returncode == 0
            _to_new_version(fleet)
        before = _shape(dsn)
        blocker = psycopg.connect(dsn)
        blocker.execute("SELECT count(*) FROM users")  # a long report: ACCESS SHARE, held
        blocked_from = time.monotonic()
        stop = threading.Event()

        def release_after_hold() -> None:
            # `hold` counted from the run's first lock wait, not from its start: on a
            # loaded machine the CLI may take seconds to reach its first step
            sim.wait_until(lambda: stop.is_set() or _waiting_on_a_lock(dsn),
                           what="the run to wait on the lock")
            if not stop.wait(hold):
                blocker.rollback()

        releaser = threading.Thread(target=release_after_hold, daemon=True)
        if outcome == "released":
            releaser.start()
        try:
            run = _advance(env, phase)
        finally:
            stop.set()
            if releaser.is_alive():
                releaser.join()
            blocker.close()
        latencies = fleet.latencies(since=blocked_from)
        assert run.stderr.count("lock_timeout on") >= 3, run.stderr  # it kept retrying
        # Each try queues in front of the shop for lock_timeout at most: never for the
        # whole time the long transaction held its lock.
        assert latencies and max(latencies) < hold / 2
        if outcome == "released":
            assert run.returncode == 0, run.stderr
        else:
            assert run.returncode == 3, run.stderr
            assert "gave up after" in run.stderr and "Traceback" not in run.stderr
            assert _shape(dsn) == before  # nothing half-done
            fleet.wait_for_requests(30)
            rerun = _advance(env, phase)  # the long transaction is over: it goes through
            assert rerun.returncode == 0, rerun.stderr
        assert sim.phase_of(dsn) is phase
        fleet.wait_for_requests(30)
        assert fleet.errors() == [] and fleet.wrong() == []
    model.check(dsn)


def _spawn(env: dict[str, str], to: Phase) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "zdmigrate", "phase", "advance", sim.RENAME, "--to", to.value],
        env=env, cwd=env["ZDMIGRATE_TEST_CWD"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


def test_two_advances_at_once_one_runs_one_exits_3(tmp_path: Path, db_url: str, dsn: str) -> None:
    # slowed down (a 0.8s pause after each statement, the backfill at 250 rows/s) so
    # the two runs overlap whatever order they start in
    env, model = _shop(tmp_path, db_url, dsn, pause=0.8,
                       backfill_options="batch_size=50, max_batch_size=50, "
                                        "max_rows_per_second=250")
    with sim.running_fleet(db_url, model) as fleet:
        fleet.start(sim.DUAL, 2)
        for phase in (Phase.EXPAND, Phase.BACKFILL, Phase.SWITCH_READ, Phase.CONTRACT):
            if phase is Phase.CONTRACT:
                _to_new_version(fleet)
            runs = [_spawn(env, phase), _spawn(env, phase)]
            results = [(run.wait(120), *run.communicate()) for run in runs]
            codes = sorted(code for code, _, _ in results)
            assert codes == [0, 3], results
            loser = next(err for code, _, err in results if code == 3)
            assert "another zdmigrate run holds the lock" in loser
            assert sim.phase_of(dsn) is phase
            assert fleet.errors() == [], phase
        fleet.wait_for_requests(30)
        assert fleet.errors() == [] and fleet.wrong() == []
    with psycopg.connect(dsn) as conn:
        # the winner ran each step once: every phase is logged done exactly once
        done = conn.execute("SELECT to_phase, count(*) FROM zdmigrate.phase_log WHERE "
                            "migration_id = %s AND outcome = 'done' GROUP BY 1",
                            [sim.RENAME]).fetchall()
    assert all(count == 1 for _, count in done), done
    model.check(dsn)


def test_contract_while_an_old_version_is_live_is_refused_and_drops_nothing(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    env, model = _shop(tmp_path, db_url, dsn)
    with sim.running_fleet(db_url, model) as fleet:
        fleet.start(sim.DUAL, 2)
        assert _advance(env, Phase.SWITCH_READ).returncode == 0
        fleet.start(sim.NEW, 2)
        lingering = fleet.of(sim.DUAL)[0]
        fleet.stop(fleet.of(sim.DUAL)[1])  # one 1.5 instance is still live
        before = _shape(dsn)
        refused = _advance(env, Phase.CONTRACT)
        assert refused.returncode == 1, refused.stderr
        assert "fleet-old-version" in refused.stderr and f"shop {sim.DUAL}" in refused.stderr
        assert _shape(dsn) == before
        fleet.wait_for_requests(40)
        assert fleet.errors() == [] and fleet.wrong() == []
        fleet.stop(lingering)
        time.sleep(1.2)  # its sessions are remembered for session_ttl (1s)
        accepted = _advance(env, Phase.CONTRACT)
        assert accepted.returncode == 0, accepted.stderr
        fleet.wait_for_requests(40)
        assert fleet.errors() == [] and fleet.wrong() == []
    with psycopg.connect(dsn) as conn:
        outcomes = conn.execute("SELECT outcome FROM zdmigrate.phase_log WHERE migration_id = %s "
                                "AND to_phase = 'contract' ORDER BY id", [sim.RENAME]).fetchall()
        assert not sim.has_column(conn, "name")
    assert [o for (o,) in outcomes] == ["refused", "done"]
    model.check(dsn)
