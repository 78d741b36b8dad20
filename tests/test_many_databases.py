"""Many databases on real PostgreSQL: one migration across 8 fresh databases, in step.

- the users.name -> full_name rename (ops.RenameColumn) across 8 shards, each under
  two-version shop traffic, with 0 failed requests and every row as the shop wrote it;
- the CLI SIGKILLed mid-phase (a named failpoint, not luck) and run again: done;
- one shard's database renamed under a running phase: exit 3 naming it, the others
  finish, and the rerun after restoring it does only that shard;
- a canary that fails: no other shard is touched;
- a decommissioned shard: unreachable = exit 3 and nothing done anywhere; skipped on
  purpose with a reason = recorded in every other shard's phase log, shown by status.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests import sim
from tests.fix_cli import Cli
from tests.fix_db import Server
from tests.helpers import ROOT
from zdmigrate import engine
from zdmigrate.config import Settings
from zdmigrate.phases import Phase
from zdmigrate.targets import Target, load_targets

SHARDS = 8
SEED_ROWS = 60


@dataclass
class Shard:
    name: str
    dbname: str
    dsn: str
    url: str


@pytest.fixture
def make_shards(
    pg_server: Server, fresh_databases: Callable[[int], list[str]]
) -> Callable[[int], list[Shard]]:
    """Makes fresh databases (shard-01, shard-02, ...), all dropped after the test."""

    def make(count: int) -> list[Shard]:
        return [Shard(f"shard-{i + 1:02}", name, pg_server.dsn_for(name),
                      pg_server.url_for(name))
                for i, name in enumerate(fresh_databases(count))]

    return make


@pytest.fixture
def shards(make_shards: Callable[[int], list[Shard]]) -> list[Shard]:
    """Eight fresh databases."""
    return make_shards(SHARDS)


def configure(tmp_path: Path, shards: list[Shard], *, rename: str = "operation",
              pause: float = 0.0) -> Path:
    """The shop's migrations and a pyproject.toml naming every shard as a target."""
    sim.shop_migrations(tmp_path, rename=rename, pause=pause)
    lines = ['[tool.zdmigrate]', 'migrations = "migrations"', "",
             "[tool.zdmigrate.fleet]", "session_ttl = 1", "", "[tool.zdmigrate.targets]"]
    lines += [f'{s.name} = "{s.url}"' for s in shards]
    path = tmp_path / "pyproject.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def settings_in(tmp_path: Path, **flags: object) -> Settings:
    return Settings.load(flags, environ={}, pyproject=tmp_path / "pyproject.toml")


def create_users(settings: Settings, targets: list[Target]) -> None:
    run = engine.advance_across(
        settings, targets, engine.AcrossOptions("0001_create_users", parallel=SHARDS))
    assert run.exit_code == 0, [r.error for r in run.results]


def phases(shards: list[Shard]) -> dict[str, Phase]:
    return {s.name: sim.phase_of(s.dsn) for s in shards}


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZDMIGRATE_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def run_cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zdmigrate", *args],
                          env=env or cli_env(tmp_path), cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout)


def no_advance_connected(shards: list[Shard]) -> bool:
    """No `phase advance` session left on any shard (a killed run's backends are gone)."""
    return not any(sim.scalar(s.dsn, "SELECT count(*) FROM pg_stat_activity WHERE "
                              "datname = current_database() AND application_name LIKE "
                              "'zdmigrate phase%%'") for s in shards)


# -- the rename under traffic ---------------------------------------------------------------


def test_rename_across_eight_shards_under_two_version_traffic(
    tmp_path: Path, shards: list[Shard]
) -> None:
    configure(tmp_path, shards)
    settings = settings_in(tmp_path)
    targets = load_targets(settings)
    assert [t.name for t in targets] == [s.name for s in shards]
    create_users(settings, targets)
    models = {s.name: sim.Model() for s in shards}
    for s in shards:
        models[s.name].seed(s.dsn, SEED_ROWS)
    with ExitStack() as stack:
        fleets = {s.name: stack.enter_context(sim.running_fleet(s.url, models[s.name], rate=4))
                  for s in shards}
        for fleet in fleets.values():
            fleet.start(sim.OLD, 1)
            fleet.start(sim.DUAL, 1)

        def traffic(count: int = 8) -> None:
            for name, fleet in fleets.items():
                fleet.wait_for_requests(count, timeout=120)
                assert fleet.errors() == [], name

        traffic()
        for phase in (Phase.EXPAND, Phase.BACKFILL, Phase.SWITCH_READ):
            run = engine.advance_across(
                settings, targets, engine.AcrossOptions(sim.RENAME, to=phase, parallel=4))
            assert run.exit_code == 0, [(r.target.name, r.error) for r in run.results]
            assert run.at_goal() == SHARDS
            assert set(phases(shards).values()) == {phase}
            traffic()
        # the deploy of 2.0 on every shard: 1.4 leaves, 2.0 arrives, then 1.5 leaves
        for fleet in fleets.values():
            fleet.stop(fleet.of(sim.OLD)[0])
            fleet.start(sim.NEW, 1)
        traffic()
        for fleet in fleets.values():
            fleet.stop(fleet.of(sim.DUAL)[0])
        sim.wait_until(lambda: not any(sim.scalar(
            s.dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name IN "
            "('shop@1.4', 'shop@1.5')") for s in shards), what="the old versions to leave")
        time.sleep(1.2)  # their sessions are remembered for session_ttl (1 s)
        run = engine.advance_across(settings, targets, engine.AcrossOptions(
            sim.RENAME, to=Phase.CONTRACT, parallel=4))
        assert run.exit_code == 0, [(r.target.name, r.error) for r in run.results]
        traffic()
        requests = sum(f.requests() for f in fleets.values())
        errors = [e for f in fleets.values() for e in f.errors()]
        wrong = [w for f in fleets.values() for w in f.wrong()]
    assert errors == [] and wrong == [], (errors[:5], wrong[:5])
    assert requests > SHARDS * 40
    for s in shards:
        models[s.name].check(s.dsn)
        with psycopg.connect(s.dsn) as conn:
            assert not sim.has_column(conn, "name")
    report = engine.status_across(settings, targets)
    rename = next(m for m in report.migrations if m.id == sim.RENAME)
    assert rename.phase is Phase.CONTRACT
    assert rename.summary() == f"{SHARDS} of {SHARDS} targets at contract"


# -- crash and resume ----------------------------------------------------------------------


def test_sigkill_of_the_cli_mid_phase_then_the_rerun_finishes_only_what_is_left(
    tmp_path: Path, shards: list[Shard]
) -> None:
    configure(tmp_path, shards)
    settings = settings_in(tmp_path)
    create_users(settings, load_targets(settings))
    # expand of the rename is 4 steps a shard: the 10th committed step is mid-way
    env = {**cli_env(tmp_path), "ZDMIGRATE_FAILPOINTS": "engine.step.after_commit=kill@10"}
    killed = run_cli(tmp_path, "phase", "advance", sim.RENAME, "--to", "expand",
                     "--parallel", "3", env=env)
    assert killed.returncode == -9, killed.stderr
    after_kill = phases(shards)
    assert set(after_kill.values()) <= {Phase.PENDING, Phase.EXPAND}
    done_steps = {s.name: sim.scalar(s.dsn, "SELECT count(*) FROM zdmigrate.steps WHERE "
                                     "status = 'done'") for s in shards}
    assert any(after_kill[n] is Phase.PENDING and done_steps[n] for n in after_kill), (
        after_kill, done_steps)  # a shard was stopped half-way through expand
    sim.wait_until(lambda: no_advance_connected(shards), what="the killed run's sessions to end")
    rerun = run_cli(tmp_path, "phase", "advance", sim.RENAME, "--to", "expand",
                    "--parallel", "3", "--format", "json")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    report = json.loads(rerun.stdout)
    outcomes = {t["name"]: t["outcome"] for t in report["targets"]}
    for name, phase in after_kill.items():
        assert outcomes[name] == ("no-op" if phase is Phase.EXPAND else "done"), (name, outcomes)
    skipped = {t["name"]: sum(x["steps_skipped"] for x in t["transitions"])
               for t in report["targets"]}
    half_done = [n for n in after_kill if after_kill[n] is Phase.PENDING and done_steps[n]]
    assert all(skipped[n] == done_steps[n] for n in half_done), (skipped, done_steps)
    assert set(phases(shards).values()) == {Phase.EXPAND}
    for s in shards:
        assert sim.scalar(s.dsn, "SELECT count(*) FROM zdmigrate.steps") == 0


def _terminate_and_rename(admin_dsn: str, old: str, new: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        # connections are refused while it is renamed: none may come back in between
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(
            sql.Identifier(old)))
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                     [old])
        sim.wait_until(lambda: not conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [old]).fetchone()[0],
            what=f"every session of {old} to end")
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
            sql.Identifier(old), sql.Identifier(new)))
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(
            sql.Identifier(new)))


def test_a_shard_renamed_mid_run_fails_alone_and_the_rerun_does_only_it(
    tmp_path: Path, shards: list[Shard], pg_server: Server
) -> None:
    configure(tmp_path, shards, rename="example", pause=1.0)
    settings = settings_in(tmp_path)
    create_users(settings, load_targets(settings))
    victim = shards[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "zdmigrate", "phase", "advance", sim.RENAME, "--to", "expand",
         "--parallel", str(SHARDS), "--format", "json"],
        env=cli_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    moved = f"{victim.dbname}_moved"
    renamed = False
    try:
        # the victim has a step done (expand has 3 statements, each followed by a 1 s pause)
        sim.wait_until(lambda: _steps_done(victim.dsn) >= 1 or process.poll() is not None,
                       timeout=120, what="a step of expand done on the victim")
        assert process.poll() is None, "the run ended before the victim could be renamed"
        _terminate_and_rename(pg_server.admin_dsn, victim.dbname, moved)
        renamed = True
        out, err = process.communicate(timeout=180)
        assert process.returncode == 3, out + err
        report = json.loads(out)
        by_name = {t["name"]: t for t in report["targets"]}
        assert by_name[victim.name]["outcome"] == "failed"
        assert by_name[victim.name]["exit_code"] == 3
        assert by_name[victim.name]["error"]
        others = [s for s in shards if s is not victim]
        assert all(by_name[s.name]["outcome"] == "done" for s in others), by_name
        assert all(sim.phase_of(s.dsn) is Phase.EXPAND for s in others)
    finally:
        if process.poll() is None:
            sim.kill(process)
        if renamed:
            _terminate_and_rename(pg_server.admin_dsn, moved, victim.dbname)
    assert sim.phase_of(victim.dsn) is Phase.PENDING
    rerun = run_cli(tmp_path, "phase", "advance", sim.RENAME, "--to", "expand",
                    "--parallel", str(SHARDS), "--format", "json")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    outcomes = {t["name"]: t["outcome"] for t in json.loads(rerun.stdout)["targets"]}
    assert outcomes == {s.name: "done" if s is victim else "no-op" for s in shards}
    assert set(phases(shards).values()) == {Phase.EXPAND}


def _steps_done(dsn: str) -> int:
    try:
        return int(sim.scalar(dsn, "SELECT count(*) FROM zdmigrate.steps"))
    except psycopg.errors.UndefinedTable:
        return 0


def test_the_text_output_names_the_failed_shard_with_its_error(
    tmp_path: Path, make_shards: Callable[[int], list[Shard]]
) -> None:
    """A shard whose expand fails on its own schema (a column in the way): exit 2 for it,
    every other shard done, and the error line names it."""
    shards = make_shards(3)
    configure(tmp_path, shards)
    settings = settings_in(tmp_path)
    create_users(settings, load_targets(settings))
    with psycopg.connect(shards[1].dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN full_name int")
    result = run_cli(tmp_path, "phase", "advance", sim.RENAME, "--to", "expand")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"error: 1 of 3 target(s) did not reach expand: {shards[1].name} (failed, exit 2)" \
        in result.stderr
    assert f"  - {shards[1].name}: " in result.stderr
    assert "2 of 3 target(s) at expand" in result.stdout
    assert [sim.phase_of(s.dsn) for s in shards[:3]] == [
        Phase.EXPAND, Phase.PENDING, Phase.EXPAND]


# -- canary ----------------------------------------------------------------------------


def test_a_failing_canary_stops_the_rest(tmp_path: Path, shards: list[Shard]) -> None:
    configure(tmp_path, shards)
    settings = settings_in(tmp_path, lock_timeout="100ms", retry_budget="1s")
    targets = load_targets(settings)
    create_users(settings, targets)
    canary = shards[4]
    with psycopg.connect(canary.dsn) as blocker:  # a long transaction holding the table
        blocker.execute("SELECT count(*) FROM users")
        run = engine.advance_across(settings, targets, engine.AcrossOptions(
            sim.RENAME, to="expand", canary=canary.name, parallel=SHARDS))
        blocker.rollback()
    assert run.exit_code == 3
    outcomes = {r.target.name: r.outcome for r in run.results}
    assert outcomes[canary.name] == "failed"
    assert "gave up after" in (run.results[4].error or "")
    assert all(outcomes[s.name] == "not-run" for s in shards if s is not canary)
    assert set(phases(shards).values()) == {Phase.PENDING}
    for s in shards:
        if s is not canary:  # untouched: not even a phase log entry for the rename
            assert sim.scalar(s.dsn, "SELECT count(*) FROM zdmigrate.phase_log WHERE "
                              "migration_id = %s", [sim.RENAME]) == 0
    run = engine.advance_across(
        settings, targets, engine.AcrossOptions(sim.RENAME, to="expand", canary=canary.name))
    assert run.exit_code == 0
    assert set(phases(shards).values()) == {Phase.EXPAND}


# -- unreachable and skipped ---------------------------------------------------------


def test_an_unreachable_shard_stops_everything_and_a_skip_is_recorded_everywhere(
    tmp_path: Path, shards: list[Shard], cli: Cli, pg_server: Server
) -> None:
    gone = Shard("shard-09", "zdm_decommissioned", pg_server.dsn_for("zdm_decommissioned"),
                 pg_server.url_for("zdm_decommissioned").replace("postgres@", "postgres:s3cr3t@"))
    configure(tmp_path, [*shards, gone])
    settings = settings_in(tmp_path)
    create_users(settings, load_targets(settings, ["shard-0[1-8]"]))

    code, out, err = cli("phase", "advance", sim.RENAME, "--to", "expand")
    assert code == 3, out + err
    assert "1 of 9 target(s) cannot be reached: shard-09; nothing was done on any target" in err
    assert "s3cr3t" not in out + err
    assert set(phases(shards).values()) == {Phase.PENDING}
    assert all(sim.scalar(s.dsn, "SELECT count(*) FROM zdmigrate.phase_log WHERE migration_id "
                          "= %s", [sim.RENAME]) == 0 for s in shards)

    code, out, err = cli("status")  # the others are shown; the unreachable one fails it
    assert code == 3, out + err
    assert f"{SHARDS} of {SHARDS} targets at pending; 1 unreachable (shard-09)" in out
    assert "error: 1 of 9 target(s) cannot be read: shard-09" in err
    assert "s3cr3t" not in out + err

    code, _, err = cli("phase", "advance", sim.RENAME, "--skip-target", "shard-09")
    assert code == 2 and "--skip-target needs --reason" in err

    code, out, err = cli("phase", "advance", sim.RENAME, "--to", "expand", "--skip-target",
                         "shard-09", "--reason", "merged into shard-04", "--actor", "alice")
    assert code == 0, out + err
    assert f"{SHARDS} of {SHARDS} target(s) at expand, 1 skipped" in out
    assert "shard-09  skipped on purpose by alice: merged into shard-04" in out
    for s in shards:
        rows = sim.scalar(s.dsn, "SELECT json_agg(json_build_object('target', target, "
                          "'actor', actor, 'reason', override_reason, 'to', to_phase)) FROM "
                          "zdmigrate.phase_log WHERE action = 'skip-target'")
        assert rows == [{"target": "shard-09", "actor": "alice", "reason": "merged into shard-04",
                         "to": "expand"}]

    code, out, err = cli("status")
    assert code == 0, out + err
    assert (f"{sim.RENAME}  expand -> dual-write" in out
            and f"{SHARDS} of {SHARDS} targets at expand; 1 skipped (shard-09)" in out)
    assert "shard-09 skipped on purpose (at expand) by alice: merged into shard-04" in out
    code, payload = cli.json("status")
    rename = next(m for m in payload["migrations"] if m["id"] == sim.RENAME)
    assert rename["phase"] == "expand"
    assert rename["skipped"]["shard-09"]["reason"] == "merged into shard-04"
    assert sorted(rename["targets"]) == [s.name for s in shards]
    assert {t["name"]: t["reachable"] for t in payload["targets"]}["shard-09"] is False
    assert "s3cr3t" not in json.dumps(payload)


def test_status_counts_shards_out_of_step_and_advance_brings_them_together(
    tmp_path: Path, shards: list[Shard], cli: Cli
) -> None:
    configure(tmp_path, shards)
    settings = settings_in(tmp_path)
    create_users(settings, load_targets(settings))
    code, out, err = cli("phase", "advance", sim.RENAME, "--to", "backfill",
                         "--target", "shard-0[1-3]")
    assert code == 0, out + err
    code, out, _ = cli("status")
    assert code == 0
    assert f"{SHARDS - 3} of {SHARDS} targets at pending, 3 at backfill" in out
    code, payload = cli.json("status")
    rename = next(m for m in payload["migrations"] if m["id"] == sim.RENAME)
    assert rename["phase"] == "pending"
    assert rename["counts"] == {"pending": SHARDS - 3, "backfill": 3}
    assert len(rename["targets"]) == SHARDS
    code, out, _ = cli("status", "--target", "shard-02")
    assert code == 0
    assert out.startswith("== shard-02 (") and "shard-03" not in out
    code, payload = cli.json("status", "--target", "shard-02")
    rename = next(m for m in payload["migrations"] if m["id"] == sim.RENAME)
    assert list(rename["targets"]) == ["shard-02"]
    assert rename["targets"]["shard-02"]["phase"] == "backfill"
    # without --to: the furthest shard's phase is the goal; those there do nothing
    code, payload = cli.json("phase", "advance", sim.RENAME)
    assert code == 0, payload
    assert payload["goal"] == "backfill"
    outcomes = {t["name"]: t["outcome"] for t in payload["targets"]}
    assert outcomes == {s.name: "no-op" if s.name in ("shard-01", "shard-02", "shard-03")
                        else "done" for s in shards}
    assert set(phases(shards).values()) == {Phase.BACKFILL}
    # and back, across every shard
    code, payload = cli.json("phase", "rollback", sim.RENAME, "--to", "pending")
    assert code == 0, payload
    assert set(phases(shards).values()) == {Phase.PENDING}


def test_bad_flags_across_targets_are_exit_2_before_anything_runs(
    tmp_path: Path, make_shards: Callable[[int], list[Shard]], cli: Cli
) -> None:
    shards = make_shards(2)
    configure(tmp_path, shards)
    for args, message in [
        (["phase", "advance", "--canary", "shard-99"], "--canary shard-99: no selected target"),
        (["phase", "advance", "--skip-target", "shard-99", "--reason", "x"],
         "--skip-target shard-99: no selected target"),
        (["phase", "advance", "--skip-target", "shard-01", "--skip-target", "shard-02",
          "--reason", "x"], "every selected target is skipped"),
        (["phase", "advance", "--target", "db-*"], "--target 'db-*' selects no target"),
        (["phase", "rollback", "--reason", "x"], "--reason goes with --skip-target"),
        (["status", "--target", "shard-3"], "--target shard-3: no target has that name"),
        (["phase", "advance", "--parallel", "0"], "--parallel"),
    ]:
        code, out, err = cli(*args)
        assert code == 2, (args, out, err)
        assert message in err, (args, err)
    for s in shards:
        assert sim.scalar(s.dsn, "SELECT to_regclass('zdmigrate.migrations') IS NULL")


def test_flags_across_targets_need_targets(cli: Cli) -> None:
    for args in (["phase", "advance", "--parallel", "2"], ["phase", "advance", "--canary", "a"],
                 ["phase", "rollback", "--skip-target", "a", "--reason", "x"],
                 ["status", "--parallel", "2"]):
        code, _, err = cli(*args)
        assert code == 2, (args, err)
        assert "needs targets, and none is configured" in err


def test_a_dry_run_across_targets_shows_each_ones_sql_and_changes_nothing(
    tmp_path: Path, make_shards: Callable[[int], list[Shard]], cli: Cli
) -> None:
    shards = make_shards(2)
    configure(tmp_path, shards)
    code, payload = cli.json("phase", "advance", "0001_create_users", "--dry-run")
    assert code == 0, payload
    assert [t["outcome"] for t in payload["targets"]] == ["planned", "planned"]
    steps = [step for t in payload["targets"][0]["transitions"] for step in t["steps"]]
    assert any("CREATE TABLE" in step and "users" in step for step in steps), steps
    code, out, _ = cli("phase", "advance", "0001_create_users", "--dry-run")
    assert code == 0
    assert "would go pending -> contract" in out
    for s in shards:
        assert sim.scalar(s.dsn, "SELECT to_regclass('zdmigrate.migrations') IS NULL")
        assert sim.scalar(s.dsn, "SELECT to_regclass('public.users') IS NULL")
