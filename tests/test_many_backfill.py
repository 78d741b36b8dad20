"""`zdmigrate backfill` across 8 real databases: every target's backfill as alone, one
total over all; JSON events carry their target; a target failing mid-backfill is exit 3
naming it while the others finish, and the rerun resumes it: 0 wrong rows anywhere."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fix_cli import Cli
from tests.fix_db import Server
from tests.fleet_helpers import write_migrations
from zdmigrate import engine
from zdmigrate.backfill import BackfillEvent
from zdmigrate.backfill.across import TargetEvent, TargetsProgress, TotalEvent
from zdmigrate.config import Settings
from zdmigrate.output.progress_across import PlainTargetsReporter, RichTargetsReporter

RENAME = "0002_rename"
SHARDS = 8
#: Rows on shard n (1-based): not all equal, so a total that adds them up shows it.
ROWS = {n: 1200 + 100 * n for n in range(1, SHARDS + 1)}


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    return write_migrations(tmp_path / "migrations")


@pytest.fixture
def shards(fresh_databases: Callable[[int], list[str]], pg_server: Server, tmp_path: Path,
           migrations_dir: Path) -> dict[str, str]:
    """8 shards, each with its users (rows differ per shard), 0002_rename at dual-write,
    configured as targets; name -> URL."""
    urls = [pg_server.url_for(n) for n in fresh_databases(SHARDS)]
    found = {f"shard-{n:02}": url for n, url in enumerate(urls, start=1)}

    def prepare(n: int, url: str) -> None:
        settings = Settings.load({"database_url": url, "migrations": migrations_dir},
                                 environ={})
        engine.advance(settings, "0001_users", to="contract")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO users (name) SELECT 'user ' || i "
                         "FROM generate_series(1, %s) AS i", [ROWS[n]])
            conn.execute("ANALYZE users")
        engine.advance(settings, RENAME, to="dual-write")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(prepare, range(1, SHARDS + 1), urls))
    (tmp_path / "pyproject.toml").write_text(
        "[tool.zdmigrate.targets]\n" + "".join(f'{n} = "{u}"\n' for n, u in found.items()))
    return found


def wrong_rows(url: str) -> int:
    """Rows whose new column is not the old one's value (or whose old value changed)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FILTER (WHERE full_name IS DISTINCT FROM name "
                           "OR name <> 'user ' || id) FROM users").fetchone()
    assert row is not None
    return int(row[0])


def filled(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(full_name) FROM users").fetchone()
    assert row is not None
    return int(row[0])


def json_lines(out: str) -> list[dict[str, Any]]:
    """The JSON documents of stdout: a record a line, then an error (indented) if any."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(out):
        if out[at].isspace():
            at += 1
            continue
        document, at = decoder.raw_decode(out, at)
        found.append(document)
    return found


ARGS = ("backfill", RENAME, "--parallel", "4", "--workers", "1", "--batch-size", "100",
        "--max-batch-size", "100")


def test_backfill_across_8_targets_with_one_total(cli: Cli, shards: dict[str, str]) -> None:
    code, out, err = cli(*ARGS, "--format", "json")
    assert code == 0, out + err
    records = json_lines(out)
    events = [r for r in records if r["event"] not in ("total", "result")]
    assert {e["target"] for e in events} == set(shards)  # every event says its target
    assert all(e["migration_id"] == RENAME for e in events)
    done = {e["target"]: e["rows_done"] for e in events if e["event"] == "done"}
    assert done == {f"shard-{n:02}": ROWS[n] for n in ROWS}
    totals = [r for r in records if r["event"] == "total"]
    assert totals[0]["targets_total"] == SHARDS and totals[0]["targets_done"] == 0
    # the total is over every target from the first record on (planned), not growing
    assert totals[0]["rows_total"] == pytest.approx(sum(ROWS.values()), rel=0.1)
    last = totals[-1]
    assert (last["rows_done"], last["rows_total"]) == (sum(ROWS.values()), sum(ROWS.values()))
    assert (last["targets_done"], last["targets_failed"], last["targets_running"]) == (8, 0, 0)
    [result] = [r for r in records if r["event"] == "result"]
    assert [t["target"] for t in result["targets"]] == list(shards)
    assert all(t["ok"] and t["backfills"][0]["status"] == "done" for t in result["targets"])
    for url in shards.values():
        assert wrong_rows(url) == 0 and filled(url) > 0


def test_text_output_off_a_terminal_is_plain_lines_with_the_target(
    cli: Cli, shards: dict[str, str]
) -> None:
    code, out, err = cli(*ARGS)
    assert code == 0, out + err
    for name in shards:
        assert f"[{name}] backfill {RENAME} public.users: done" in err
    assert f"backfill {RENAME} on {SHARDS} targets: " in err
    assert f"{SHARDS} of {SHARDS} done" in err
    assert f"shard-08 {RENAME} public.users: done" in out


FAIL_ON_SHARD_06 = """
CREATE FUNCTION users_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id = 900 THEN RAISE EXCEPTION 'disk full on shard-06 (a test)'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_fail BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION users_fail();
"""


def test_one_target_failing_mid_backfill_exit_3_others_finish_rerun_resumes(
    cli: Cli, shards: dict[str, str]
) -> None:
    with psycopg.connect(shards["shard-06"], autocommit=True) as conn:
        conn.execute(FAIL_ON_SHARD_06)

    code, out, err = cli(*ARGS, "--format", "json")
    assert code == 3, out + err
    records = json_lines(out)
    [failure] = [r for r in records if "error" in r]
    assert failure["error"]["exit_code"] == 3
    assert list(failure["error"]["targets"]) == ["shard-06"]
    assert "shard-06" in failure["error"]["message"]
    assert "disk full on shard-06" in failure["error"]["targets"]["shard-06"]["message"]
    [failed] = [r for r in records if r.get("event") == "failed"]
    assert failed["target"] == "shard-06" and "disk full on shard-06" in failed["message"]
    for name, url in shards.items():  # the others finished, shard-06 stopped where it was
        if name != "shard-06":
            assert wrong_rows(url) == 0
    stopped_at = filled(shards["shard-06"])
    assert 0 < stopped_at < ROWS[6]  # batches before row 900 committed, none after it
    assert stopped_at < 900

    # status: a line per target, the total over all
    code, report = cli.json("status")
    assert code == 0, report
    [rename] = [m for m in report["migrations"] if m["id"] == RENAME]
    lines = {line["target"]: line for line in rename["backfill"]["lines"]}
    assert set(lines) == set(shards)
    assert lines["shard-06"]["status"] != "done"
    assert lines["shard-06"]["rows_done"] == stopped_at
    assert all(lines[n]["status"] == "done" for n in shards if n != "shard-06")
    assert rename["backfill"]["targets_done"] == SHARDS - 1
    assert rename["backfill"]["rows_done"] == sum(ROWS.values()) - ROWS[6] + stopped_at
    code, out, _ = cli("status")
    assert f"{SHARDS - 1} of {SHARDS} target(s) done" in out
    assert f"shard-06  users  {lines['shard-06']['status']}  {stopped_at:,}" in out

    with psycopg.connect(shards["shard-06"], autocommit=True) as conn:
        conn.execute("DROP TRIGGER users_fail ON users")
    code, out, err = cli(*ARGS, "--format", "json")
    assert code == 0, out + err
    records = json_lines(out)
    [start] = [r for r in records if r.get("target") == "shard-06" and r["event"] == "start"]
    assert start["rows_done"] == stopped_at  # resumed from its saved cursor
    # the finished targets did nothing again
    assert not [r for r in records if r.get("target") not in (None, "shard-06")
                and r["event"] == "start"]
    for url in shards.values():
        assert wrong_rows(url) == 0 and filled(url) > 0
    assert filled(shards["shard-06"]) == ROWS[6]


def test_the_total_adds_every_target_and_replaces_the_plan_with_events() -> None:
    seen: list[TargetEvent | TotalEvent] = []
    progress = TargetsProgress(seen.append, RENAME, ["a", "b"],
                               {("a", "public.users"): (0, 1000), ("b", "public.users"): (0, 500)})
    assert (progress.total().rows_done, progress.total().rows_total) == (0, 1500)

    def event(kind: str, done: int, total: int) -> BackfillEvent:
        return BackfillEvent(kind, RENAME, "public.users", done, total, done, None, None)

    progress.for_target("a")(event("progress", 400, 1100))  # a's real total replaces the plan
    total = progress.total()
    assert (total.rows_done, total.rows_total, total.targets_running) == (400, 1600, 2)
    progress.for_target("b")(event("done", 520, 520))
    progress.finished("b", ok=True)
    progress.finished("a", ok=False, message="disk full")
    total = progress.total()
    assert (total.rows_done, total.rows_total) == (920, 1620)
    assert (total.targets_done, total.targets_failed, total.targets_running) == (1, 1, 0)
    assert [(e.target, e.event.kind) for e in seen if isinstance(e, TargetEvent)] == [
        ("a", "progress"), ("b", "done"), ("a", "failed")]

    stream = io.StringIO()
    plain = PlainTargetsReporter(stream, interval=3600)
    for e in seen:
        plain(e)
    lines = stream.getvalue().splitlines()
    assert "[b] backfill 0002_rename public.users: done, 520 rows covered, 520 updated" in lines
    # a's progress is only in the total; its failure is a line of its own
    assert [line for line in lines if line.startswith("[a]")] == [
        "[a] backfill 0002_rename public.users: failed: disk full [400/1,100 rows (36%)]"]
    assert lines[-1].endswith("1 of 2 done, 1 failed")


def test_on_a_terminal_one_bar_for_every_target() -> None:
    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=True, width=160)
    bar = RichTargetsReporter(console)
    progress = TargetsProgress(bar, RENAME, ["a", "b", "c"],
                               {(n, "public.users"): (0, 100) for n in "abc"})
    for name in "abc":
        progress.for_target(name)(BackfillEvent("progress", RENAME, "public.users", 50, 100,
                                                50, 10.0, 5.0))
    progress.tick(force=True)
    bar.close()
    assert len(bar.progress.tasks) == 1
    [task] = bar.progress.tasks
    assert (task.completed, task.total) == (150, 300)


def test_an_unreachable_target_stops_the_backfill_before_any_starts(
    cli: Cli, shards: dict[str, str], tmp_path: Path
) -> None:
    gone = next(iter(shards.values())).rsplit("/", 1)[0] + "/zdm_no_such_database"
    (tmp_path / "pyproject.toml").write_text(
        "[tool.zdmigrate.targets]\n" + "".join(f'{n} = "{u}"\n' for n, u in shards.items())
        + f'shard-09 = "{gone}"\n')
    code, out, err = cli(*ARGS, "--format", "json")
    assert code == 3, out + err
    [data] = json_lines(out)  # the error alone: no target started
    assert list(data["error"]["targets"]) == ["shard-09"]
    assert "shard-09" in data["error"]["message"]
    for url in shards.values():  # nothing half-done elsewhere
        assert filled(url) == 0
