"""Crash safety at the exact point: failpoints armed in a real CLI process, real PostgreSQL.

Each test arms one failpoint (`zdmigrate.failpoints`) through ZDMIGRATE_FAILPOINTS,
runs `python -m zdmigrate`, and checks the state it left is exactly "done" or
exactly "not done" at that point: every step's work is there if and only if the
step is recorded, every row the backfill touched is counted in its saved
progress. Then it runs again unarmed and checks nothing was lost or repeated:
each step's side effect once, each row touched by the backfill once (a trigger
counts them), the migration complete.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.helpers import ROOT, cli_env, run_cli, write_migration
from zdmigrate import failpoints
from zdmigrate.errors import BadInput
from zdmigrate.failpoints import FailpointTriggered, armed, failpoint, parse

MIGRATION = "0001_failpoints"
ROWS = 3000
BATCH = 200

#: Every step of the migration in the order `phase advance` runs them, with its phase.
STEPS = [
    ("expand", "INSERT side effect"),
    ("expand", "ADD COLUMN copy"),
    ("expand", "INSERT side effect"),
    ("backfill", "copy = n"),
    ("switch-read", "INSERT side effect"),
    ("contract", "INSERT side effect"),
    ("contract", "DROP COLUMN n"),
    ("contract", "RENAME COLUMN copy TO n (the swap)"),
    ("contract", "INSERT side effect"),
]
PHASES = ["pending", "expand", "dual-write", "backfill", "switch-read", "contract"]
#: The whole migration in one run. It declares no compat (no app here), so contract's
#: fleet check is overridden; the lint and the other gates still apply.
ADVANCE = ["phase", "advance", MIGRATION, "--to", "contract", "--override-fleet-check",
           "--reason", "no app in this test"]

BODY = f"""
revision = "{MIGRATION}"
down_revision = None


def expand(ctx):
    ctx.execute("INSERT INTO public.side_effects VALUES (1)")
    ctx.execute("ALTER TABLE public.items ADD COLUMN copy integer")
    ctx.execute("INSERT INTO public.side_effects VALUES (3)")


def backfill(ctx):
    ctx.backfill("items", set={{"copy": "n"}}, batch_size={BATCH}, min_batch_size={BATCH},
                 max_batch_size={BATCH}, chunk_rows=1000, lease_seconds=2,
                 max_replication_lag=0, poll_interval=0.1, max_workers=1)


def switch_read(ctx):
    ctx.execute("INSERT INTO public.side_effects VALUES (5)")


def contract(ctx):
    ctx.execute("INSERT INTO public.side_effects VALUES (6)")
    ctx.execute("ALTER TABLE public.items DROP COLUMN n")
    ctx.execute("ALTER TABLE public.items RENAME COLUMN copy TO n")
    ctx.execute("INSERT INTO public.side_effects VALUES (9)")
"""

SETUP = f"""
CREATE TABLE public.side_effects (step int NOT NULL);
CREATE TABLE public.items (
    id int PRIMARY KEY, n int NOT NULL, note text, touches int NOT NULL DEFAULT 0);
INSERT INTO public.items (id, n) SELECT i, i * 7 FROM generate_series(1, {ROWS}) i;
CREATE FUNCTION public.count_backfill_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('application_name') = 'zdmigrate-backfill' THEN
        NEW.touches := OLD.touches + 1;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER count_backfill_touch BEFORE UPDATE ON public.items
    FOR EACH ROW EXECUTE FUNCTION public.count_backfill_touch();
"""


# -- the module on its own ---------------------------------------------------------


def test_unarmed_points_do_nothing_and_the_table_is_empty() -> None:
    assert failpoints._ARMED == {}
    for name in failpoints.POINTS:
        failpoint(name)


def test_raise_on_the_nth_hit_only_and_disarmed_after_the_block() -> None:
    with armed({"engine.step.before": "raise@3"}) as actions:
        failpoint("engine.step.before")
        failpoint("engine.step.before")
        failpoint("engine.step.after_commit")
        with pytest.raises(FailpointTriggered, match=r"engine\.step\.before \(hit 3\)"):
            failpoint("engine.step.before")
        failpoint("engine.step.before")  # the 4th hit passes
        assert actions["engine.step.before"].hits == 4
    assert failpoints._ARMED == {}
    failpoint("engine.step.before")


def test_pause_sleeps_on_every_hit_from_the_nth() -> None:
    with armed({"backfill.claim.before": "pause(30)@2"}):
        began = time.monotonic()
        failpoint("backfill.claim.before")
        first = time.monotonic() - began
        failpoint("backfill.claim.before")
        failpoint("backfill.claim.before")
        both = time.monotonic() - began
    assert first < 0.03 <= 0.06 <= both


@pytest.mark.parametrize(("spec", "message"), [
    ("engine.nowhere=kill", "not NAME=ACTION with a known failpoint name"),
    ("engine.step.before", "not NAME=ACTION"),
    ("engine.step.before=explode", "'explode' (for engine.step.before) is not an action"),
    ("engine.step.before=kill@0", "'kill@0' (for engine.step.before) is not an action"),
])
def test_a_bad_spec_names_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(BadInput, match="ZDMIGRATE_FAILPOINTS: .*" + message.replace("(", r"\(")
                       .replace(")", r"\)")):
        parse(spec)


def test_a_bad_environment_variable_is_bad_input_exit_2_at_the_first_point(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    env = _project(tmp_path, db_url, dsn)
    env[failpoints.ENV] = "engine.step.befor=kill"
    result = run_cli(["phase", "advance", MIGRATION, "--to", "dual-write"], env)
    assert result.returncode == 2, result.stderr
    assert "ZDMIGRATE_FAILPOINTS: 'engine.step.befor=kill' is not NAME=ACTION" in result.stderr
    assert "Traceback" not in result.stderr
    assert _work_done(dsn) == [False] * len(STEPS)


def test_every_point_named_in_the_source_is_known_and_every_known_point_is_placed() -> None:
    import re

    placed = set()
    for path in (ROOT / "src" / "zdmigrate").rglob("*.py"):
        placed |= set(re.findall(r'failpoint\("([a-z_.]+)"\)', path.read_text()))
    assert placed == set(failpoints.POINTS)


# -- the engine: each step's work and its done-mark ------------------------------------


def _project(tmp_path: Path, db_url: str, dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SETUP.encode())
    folder = tmp_path / "migrations"
    folder.mkdir()
    write_migration(folder, MIGRATION, BODY)
    return cli_env(db_url, folder)


def _columns(conn: psycopg.Connection) -> set[str]:  # type: ignore[type-arg]
    """The columns of items; the n that contract's swap made (the 5th column) is "n (swapped)"."""
    rows = conn.execute(
        "SELECT attname, attnum FROM pg_attribute WHERE attrelid = 'public.items'::regclass "
        "AND attnum > 0 AND NOT attisdropped").fetchall()
    return {"n (swapped)" if (name, num) == ("n", 5) else name for name, num in rows}


#: How many of the DDL steps (2, 7, 8) the columns of items show done.
_DDL_DONE = {
    frozenset({"id", "n", "note", "touches"}): 0,
    frozenset({"id", "n", "note", "touches", "copy"}): 1,
    frozenset({"id", "note", "touches", "copy"}): 2,
}


def _work_done(dsn: str) -> list[bool]:
    """For each step of STEPS, whether its work is in the database."""
    with psycopg.connect(dsn) as conn:
        effects = [r[0] for r in conn.execute("SELECT step FROM public.side_effects")]
        assert len(effects) == len(set(effects)), f"a step ran twice: {sorted(effects)}"
        columns = frozenset(_columns(conn))
        ddl = _DDL_DONE.get(columns, 3)
        if ddl == 3:
            assert columns == {"id", "note", "touches", "n (swapped)"}, columns
        copied = False
        if "copy" in columns:
            missing = conn.execute("SELECT count(*) FROM public.items WHERE copy IS NULL")
            copied = missing.fetchone() == (0,)
        elif ddl == 3:
            copied = True
    done = {1: 1 in effects, 2: ddl >= 1, 3: 3 in effects, 4: copied, 5: 5 in effects,
            6: 6 in effects, 7: ddl >= 2, 8: ddl >= 3, 9: 9 in effects}
    return [done[i + 1] for i in range(len(STEPS))]


def _recorded(dsn: str) -> list[bool]:
    """For each step of STEPS, whether zdmigrate has it done (its phase entered, or its mark)."""
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute("SELECT phase FROM zdmigrate.migrations WHERE id = %s",
                               [MIGRATION]).fetchone()
            marks = set(conn.execute(
                "SELECT phase, step_index FROM zdmigrate.steps WHERE migration_id = %s "
                "AND direction = 'advance'", [MIGRATION]).fetchall())
        except psycopg.errors.UndefinedTable:
            return [False] * len(STEPS)
    entered = PHASES.index(row[0]) if row and row[0] in PHASES else -1
    recorded = []
    for i, (phase, _) in enumerate(STEPS):
        index_in_phase = [p for p, _ in STEPS[:i]].count(phase)
        recorded.append(PHASES.index(phase) <= entered or (phase, index_in_phase) in marks)
    return recorded


def _prefix(n: int) -> list[bool]:
    return [True] * n + [False] * (len(STEPS) - n)


def _phase(dsn: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute("SELECT phase FROM zdmigrate.migrations WHERE id = %s",
                               [MIGRATION]).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return row[0] if row else None


def _check_complete_and_once(dsn: str) -> None:
    """Every step's work once, the migration complete, every row copied and touched once."""
    assert _phase(dsn) == "contract"
    assert _work_done(dsn) == _prefix(len(STEPS))
    with psycopg.connect(dsn) as conn:
        effects = sorted(r[0] for r in conn.execute("SELECT step FROM public.side_effects"))
        assert effects == [1, 3, 5, 6, 9]
        assert conn.execute("SELECT count(*) FROM zdmigrate.steps").fetchone() == (0,)
        touches = dict(conn.execute(
            "SELECT touches, count(*) FROM public.items WHERE id <= %s GROUP BY touches",
            [ROWS]).fetchall())
        assert touches == {1: ROWS}, f"rows by times the backfill touched them: {touches}"
        wrong = conn.execute(
            "SELECT count(*) FROM public.items WHERE id <= %s AND n IS DISTINCT FROM id * 7",
            [ROWS]).fetchone()
        assert wrong == (0,)


#: (point, hit) and how many steps are then done and recorded. Hits count steps across
#: the phases (STEPS) for engine.step.*, phases for engine.phase.* (dual-write, which has no
#: step here, is the 2nd).
ENGINE_CASES = [
    ("engine.step.before", 1, 0, 0),
    ("engine.step.before", 7, 6, 6),  # before contract's DROP COLUMN
    ("engine.step.after_work", 1, 0, 0),
    ("engine.step.after_work", 2, 1, 1),  # ADD COLUMN and its mark: one transaction
    ("engine.step.after_work", 4, 4, 3),  # the backfill finished (resumable, idempotent)
    ("engine.step.after_work", 5, 4, 4),
    ("engine.step.after_work", 7, 6, 6),  # contract's DROP COLUMN
    ("engine.step.after_work", 8, 7, 7),  # contract's swap
    ("engine.step.after_commit", 3, 3, 3),
    ("engine.step.after_commit", 8, 8, 8),
    ("engine.phase.before_commit", 1, 3, 3),
    ("engine.phase.before_commit", 5, 9, 9),  # contract: every step done, then the phase
    ("engine.phase.after_commit", 3, 4, 4),
    ("engine.phase.after_commit", 4, 5, 5),
]


@pytest.mark.parametrize(("point", "hit", "done", "recorded"), ENGINE_CASES,
                         ids=[f"{c[0]}@{c[1]}" for c in ENGINE_CASES])
def test_engine_killed_at_a_point_leaves_exactly_done_or_not_then_resumes_once(
    tmp_path: Path, db_url: str, dsn: str, point: str, hit: int, done: int, recorded: int
) -> None:
    env = _project(tmp_path, db_url, dsn)
    killed = run_cli(ADVANCE,
                     {**env, failpoints.ENV: f"{point}=kill@{hit}"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _work_done(dsn) == _prefix(done)
    assert _recorded(dsn) == _prefix(recorded)
    again = run_cli(ADVANCE, env)
    assert again.returncode == 0, again.stderr
    _check_complete_and_once(dsn)


def test_engine_raise_at_a_point_is_a_failed_phase_then_resumes_once(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    env = _project(tmp_path, db_url, dsn)
    failed = run_cli(ADVANCE,
                     {**env, failpoints.ENV: "engine.step.after_work=raise@6"})
    assert failed.returncode != 0
    assert "failpoint engine.step.after_work (hit 6)" in failed.stderr
    assert _work_done(dsn) == _prefix(5) and _recorded(dsn) == _prefix(5)
    with psycopg.connect(dsn) as conn:
        outcome = conn.execute("SELECT outcome FROM zdmigrate.phase_log WHERE to_phase = "
                               "'contract' ORDER BY id DESC LIMIT 1").fetchone()
    assert outcome == ("failed",)
    assert run_cli(ADVANCE, env).returncode == 0
    _check_complete_and_once(dsn)


# -- the backfill: batches, cursors, claims and fences, under live writes -----------------


@contextmanager
def _writers(dsn: str) -> Iterator[list[int]]:
    """An app writing while the backfill runs: updates of other columns, new rows (dual-written)."""
    stop = threading.Event()
    done: list[int] = []
    errors: list[BaseException] = []

    def write() -> None:
        rng = random.Random(7)
        new_id = ROWS + 1
        try:
            with psycopg.connect(dsn, autocommit=True, application_name="shop") as conn:
                while not stop.is_set():
                    conn.execute("UPDATE public.items SET note = %s WHERE id = %s",
                                 [f"w{len(done)}", rng.randint(1, ROWS)])
                    conn.execute("INSERT INTO public.items (id, n, copy) VALUES (%s, %s, %s)",
                                 [new_id, new_id * 7, new_id * 7])
                    new_id += 1
                    done.append(1)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert done, "the writer wrote nothing"


def _backfill_progress(dsn: str) -> tuple[int, int]:
    """(rows the trigger counted as touched by the backfill, rows_updated the backfill saved)."""
    with psycopg.connect(dsn) as conn:
        touched = conn.execute("SELECT coalesce(sum(touches), 0) FROM public.items").fetchone()
        saved = conn.execute(
            "SELECT coalesce(sum(rows_updated), 0) FROM zdmigrate.backfill_ranges "
            "WHERE migration_id = %s", [MIGRATION]).fetchone()
    assert touched is not None and saved is not None
    return int(touched[0]), int(saved[0])


def _check_backfilled_once(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        touches = dict(conn.execute(
            "SELECT touches, count(*) FROM public.items WHERE id <= %s GROUP BY touches",
            [ROWS]).fetchall())
        assert touches == {1: ROWS}, f"rows by times the backfill touched them: {touches}"
        later = conn.execute("SELECT count(*) FROM public.items WHERE id > %s AND touches > 1",
                             [ROWS]).fetchone()
        assert later == (0,)
        wrong = conn.execute("SELECT count(*) FROM public.items WHERE copy IS DISTINCT FROM n")
        assert wrong.fetchone() == (0,)
        status = conn.execute("SELECT status FROM zdmigrate.backfills").fetchone()
        assert status == ("done",)


BACKFILL_CASES = [
    ("backfill.claim.before", 2),
    ("backfill.claim.after", 1),  # a range claimed, its worker dead before any batch
    ("backfill.fence.before", 3),
    ("backfill.fence.after", 3),
    ("backfill.batch.before_cursor", 1),
    ("backfill.batch.before_cursor", 4),
    ("backfill.batch.after_commit", 3),
]


@pytest.mark.parametrize(("point", "hit"), BACKFILL_CASES,
                         ids=[f"{c[0]}@{c[1]}" for c in BACKFILL_CASES])
def test_backfill_killed_at_a_point_saved_exactly_what_it_did_then_touches_each_row_once(
    tmp_path: Path, db_url: str, dsn: str, point: str, hit: int
) -> None:
    env = _project(tmp_path, db_url, dsn)
    assert run_cli(["phase", "advance", MIGRATION, "--to", "dual-write"], env).returncode == 0
    with _writers(dsn):
        killed = run_cli(["backfill", MIGRATION, "--workers", "2"],
                         {**env, failpoints.ENV: f"{point}=kill@{hit}"})
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        touched, saved = _backfill_progress(dsn)
        # every row the dead run's batches touched is in its saved progress, and no other
        assert touched == saved
        assert saved % BATCH == 0 and saved < ROWS
        again = run_cli(["backfill", MIGRATION, "--workers", "2"], env)
        assert again.returncode == 0, again.stderr
    _check_backfilled_once(dsn)


def _wait_stopped(proc: subprocess.Popen[str], deadline: float = 60) -> None:
    """Until `proc` has stopped itself (SIGSTOP at its failpoint); fails loudly at the deadline."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            _out, err = proc.communicate()
            pytest.fail(f"the worker ended (exit {proc.returncode}) before its failpoint: {err}")
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        time.sleep(0.02)
    pytest.fail(f"the worker did not reach its failpoint within {deadline}s")


def _sessions(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT pid, application_name, state, wait_event, left(query, 120) FROM "
            "pg_stat_activity WHERE datname = current_database()").fetchall()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_worker_thought_dead_cannot_apply_a_batch_over_its_successor(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    """The fence: a worker stopped inside its batch transaction past its lease; another takes
    its range over and finishes the table; the first wakes and must write nothing."""
    env = _project(tmp_path, db_url, dsn)
    assert run_cli(["phase", "advance", MIGRATION, "--to", "dual-write"], env).returncode == 0
    sleeper = subprocess.Popen(
        [sys.executable, "-m", "zdmigrate", "backfill", MIGRATION, "--workers", "1"],
        env={**env, failpoints.ENV: "backfill.fence.before=stop@2"}, cwd=str(ROOT),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait_stopped(sleeper)
        assert _backfill_progress(dsn) == (BATCH, BATCH)
        # the lease (2s) runs out while it sleeps; this run takes its range over
        try:
            successor = run_cli(["backfill", MIGRATION, "--workers", "1"], env, timeout=90)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"the successor did not finish: {exc.stderr!r}; sessions: {_sessions(dsn)}")
        assert successor.returncode == 0, successor.stderr
        _check_backfilled_once(dsn)
    finally:
        os.kill(sleeper.pid, signal.SIGCONT)
        _out, err = sleeper.communicate(timeout=60)
    assert sleeper.returncode == 0, err
    _check_backfilled_once(dsn)
