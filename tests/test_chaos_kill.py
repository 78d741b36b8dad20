"""Chaos: `phase advance` killed at random moments of every phase, under live shop traffic.

Each run is a real `python -m zdmigrate` process killed with SIGKILL; the next
run must pick up where it stopped, the shop must never see a failed request,
and at the end every row must be what the shop wrote (count and checksum
against the model the test keeps). test_safety.py covers the plain resume of
a killed run; these add traffic, randomness and every phase.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests import sim
from tests.helpers import cli_env, run_cli, settings_for
from zdmigrate import engine
from zdmigrate.phases import Phase

pytestmark = pytest.mark.slow

SEED_ROWS = 3000
KILLS_PER_PHASE = 5


class Crash(BaseException):
    """Stands in for the process dying between two steps."""


def _crash_before(step: int, phase: Phase):  # type: ignore[no-untyped-def]
    marker = f"  {phase} step {step}:"

    def log(line: str) -> None:
        if line.startswith(marker):
            raise Crash(line)

    return log


@pytest.mark.parametrize("rename", ["example", "operation"])
def test_contract_interrupted_between_any_two_steps_never_fails_a_request(
    tmp_path: Path, db_url: str, dsn: str, rename: str
) -> None:
    """The new version keeps working whichever contract step the run died before."""
    folder = sim.shop_migrations(tmp_path, rename=rename)
    settings = settings_for(db_url, folder).with_(extra={"fleet": {"session_ttl": 1}})
    engine.advance(settings, "0001_create_users")
    model = sim.Model()
    model.seed(dsn, 200)
    with sim.running_fleet(db_url, model) as fleet:
        fleet.start(sim.DUAL, 2)
        engine.advance(settings, sim.RENAME, to="switch-read")
        for instance in fleet.of(sim.DUAL):
            fleet.stop(instance)
        fleet.start(sim.NEW, 2, rate=40)
        time.sleep(1.2)  # the 1.5 sessions are remembered for session_ttl
        contract = next(p for p in engine.plan(settings, sim.RENAME) if p.phase is Phase.CONTRACT)
        steps = len(contract.steps)
        assert steps >= 3
        for step in range(2, steps + 1):
            with pytest.raises(Crash):
                engine.advance(settings, sim.RENAME, to="contract",
                               log=_crash_before(step, Phase.CONTRACT))
            assert sim.phase_of(dsn) is Phase.SWITCH_READ
            fleet.wait_for_requests(60)  # the new version, with contract stopped half-way
            assert fleet.errors() == [], f"after contract stopped before step {step}"
        engine.advance(settings, sim.RENAME, to="contract")
        fleet.wait_for_requests(40)
    assert sim.phase_of(dsn) is Phase.CONTRACT
    assert fleet.errors() == [] and fleet.wrong() == []
    model.check(dsn)


def _spawn_advance(env: dict[str, str], cwd: Path, to: Phase) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "zdmigrate", "phase", "advance", sim.RENAME, "--to", to.value],
        env=env, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _advance_connected(dsn: str) -> bool:
    return bool(sim.scalar(dsn, "SELECT count(*) FROM pg_stat_activity "
                                "WHERE application_name = 'zdmigrate phase advance'"))


def _partial(dsn: str) -> bool:
    """Did the kill leave a phase half-done (steps recorded, or a backfill under way)?"""
    try:
        return bool(sim.scalar(
            dsn, "SELECT (SELECT count(*) FROM zdmigrate.steps) + (SELECT count(*) FROM "
                 "zdmigrate.backfills WHERE status <> 'done' AND rows_done > 0)"))
    except psycopg.errors.UndefinedTable:
        return False


def test_sigkill_at_random_moments_of_every_phase_then_rerun_to_the_end(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    seed = int(os.environ.get("ZDMIGRATE_CHAOS_SEED", random.randrange(1_000_000)))
    rng = random.Random(seed)
    folder = sim.shop_migrations(
        tmp_path, pause=0.25,
        backfill_options="batch_size=100, max_batch_size=100, max_rows_per_second=1500")
    sim.fleet_config(tmp_path)
    env = cli_env(db_url, folder)
    assert run_cli(["phase", "advance", "0001_create_users"], env).returncode == 0
    model = sim.Model()
    model.seed(dsn, SEED_ROWS)
    # about how long each phase's work lasts (the slowed copy: a 0.25s pause after each
    # statement, the backfill at 1500 rows/s), so most kills land inside it
    windows = {Phase.EXPAND: 0.9, Phase.BACKFILL: 2.0, Phase.SWITCH_READ: 0.6,
               Phase.CONTRACT: 1.6}
    outcomes: list[str] = []
    with sim.running_fleet(db_url, model) as fleet:
        fleet.start(sim.OLD, 1)
        fleet.start(sim.DUAL, 2)
        for phase, window in windows.items():
            if phase is Phase.CONTRACT:
                # the deploy of 2.0 before contract: 1.4 and 1.5 leave, 2.0 arrives
                for instance in list(fleet.live):
                    fleet.stop(instance)
                fleet.start(sim.NEW, 2)
                time.sleep(1.2)  # sessions of the old versions are remembered 1s
            before = sim.phase_of(dsn)
            for kill in range(KILLS_PER_PHASE):
                process = _spawn_advance(env, tmp_path, phase)
                sim.wait_until(lambda p=process: _advance_connected(dsn) or p.poll() is not None,
                               what="phase advance to connect")
                if kill == 0:
                    # on a loaded machine the time from connecting to the first step can
                    # outlast the window: the first kill of each phase waits for the work
                    # to have begun, so some kill always lands inside it
                    sim.wait_until(lambda p=process: _partial(dsn) or p.poll() is not None,
                                   what="the phase's first step")
                    time.sleep(rng.uniform(0, window / 2))
                else:
                    time.sleep(rng.uniform(0, window))
                sim.kill(process)
                reached = sim.phase_of(dsn)
                assert before <= reached <= phase, f"kill {kill} of {phase} left {reached}"
                outcomes.append(f"{phase}#{kill}: {'partial' if _partial(dsn) else reached}")
                assert fleet.errors() == [], f"seed {seed}, after kill {kill} of {phase}"
                fleet.wait_for_requests(20)
                if reached is phase:
                    break
            rerun = run_cli(["phase", "advance", sim.RENAME, "--to", phase.value],
                            dict(env, ZDMIGRATE_TEST_CWD=str(tmp_path)))
            assert rerun.returncode == 0, f"seed {seed}: {rerun.stderr}"
            assert sim.phase_of(dsn) is phase
            fleet.wait_for_requests(30)
        assert fleet.errors() == [], f"seed {seed}"
        assert fleet.wrong() == [], f"seed {seed}"
    print(f"seed {seed}:", outcomes)
    assert any("partial" in outcome for outcome in outcomes), (seed, outcomes)
    count, _ = model.check(dsn)
    assert count > SEED_ROWS
    with psycopg.connect(dsn) as conn:
        assert not sim.has_column(conn, "name")
        assert conn.execute("SELECT count(*) FROM zdmigrate.steps").fetchone() == (0,)
