"""`zdmigrate demo` ships the example history under live traffic with zero failed requests.

Each strategy runs end to end against real PostgreSQL (small --rows and
--duration): real connections per app instance, runtime heartbeats, the real
engine, gate and fleet checks. The demo works in a throw-away database of its
own on the server it is given, and drops it afterwards.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.helpers import EXAMPLE
from zdmigrate import cli
from zdmigrate.demo.shop import DUAL_WRITING, OLD
from zdmigrate.fleet import CHECK_OLD_VERSION
from zdmigrate.migration import load_migrations

SMALL = ["--rows", "300", "--duration", "3", "--rate", "100"]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ZDMIGRATE_DATABASE_URL", "ZDMIGRATE_MIGRATIONS", "ZDMIGRATE_STATE_SCHEMA"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("strategy", ["rolling", "canary", "blue-green"])
def test_demo_ships_every_migration_with_no_failed_request(
    strategy: str, db_url: str, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.run(["demo", "--database-url", db_url, "--strategy", strategy, *SMALL,
                    "--format", "json"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert code == 0, captured.err[-3000:]
    assert summary["ok"] is True and summary["strategy"] == strategy
    assert summary["failed_requests"] == 0, summary["errors"]
    assert summary["requests"] > 0 and summary["p99_latency_ms"] > 0
    # the old version, the dual-writing one and the new ones the compat asks for all served
    # traffic, and none of them saw a failure
    releases = summary["releases"]
    assert releases[:2] == [OLD, DUAL_WRITING] and len(releases) >= 3
    versions = {v["version"]: v for v in summary["versions"]}
    assert set(versions) == set(releases)
    assert all(v["requests"] > 0 and v["failed_requests"] == 0 for v in versions.values())
    # every migration of the example went through to contract
    ids = [m.id for m in load_migrations(EXAMPLE)]
    assert [m["id"] for m in summary["migrations"]] == ids
    assert {m["phase"] for m in summary["migrations"]} == {"contract"}
    assert summary["backfilled_rows"] > 0
    assert {b["migration"] for b in summary["backfills"]} >= {
        "0002_rename_users_name", "0003_users_email_lower", "0008_orders_total_numeric"}
    # contract was refused while an older version was live, because of it; first while the
    # dual-writing version still ran
    refusals = summary["contract_refusals"]
    assert refusals, "contract was never refused"
    for refusal in refusals:
        assert refusal["old_versions"] and set(refusal["old_versions"]) < set(releases)
        assert {b["check"] for b in refusal["blockers"]} == {CHECK_OLD_VERSION}
    assert refusals[0]["migration"] == "0002_rename_users_name"
    assert DUAL_WRITING in refusals[0]["old_versions"]
    # the gate refused the first new version before switch-read, then let it out; and it
    # refuses the dual-writing version (a rollback) after contract
    gate = [(g["version"], g["allowed"]) for g in summary["gate"]]
    first_new = releases[2]
    assert gate.index((first_new, False)) + 1 == gate.index((first_new, True))
    assert gate[-1] == (DUAL_WRITING, False)
    # the demo worked in a database of its own, dropped afterwards; the given one is untouched
    name = re.search(r"zdmigrate_demo_[0-9a-f]{8}", summary["database"])
    assert name is not None
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                            [name.group(0)]).fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
        ).fetchone() == (0,)


def test_demo_without_a_database_runs_on_an_embedded_postgresql_and_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = cli.run(["demo", "--strategy", "canary", *SMALL, "--format", "json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["ok"] is True
    assert summary["failed_requests"] == 0
    assert summary["database"].startswith("an embedded PostgreSQL")
    assert list(tmp_path.glob("zdmigrate-pg-*")) == []


def test_demo_plain_output_tells_the_story(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.run(["demo", "--database-url", db_url, "--strategy", "blue-green", *SMALL])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    assert "blue (1.5) idle but connected" in out
    assert re.search(r"--to contract`: refused, shop 1\.5 live: \d+ instance\(s\)", out)
    assert "`zdmigrate fleet retire --app shop --version 1.5`" in out
    assert "0002_rename_users_name: contract done" in out
    assert "zero downtime: yes, not one request failed" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "big-bang"], "'big-bang' is not one of"),
        (["--rows", "0"], "--rows"),
        (["--rate", "0"], "--rate"),
        (["--duration", "-1"], "--duration"),
        (["--format", "sarif"], "'sarif' is not one of 'text', 'json'"),
        (["--migrations", "/nonexistent"], "No such option '--migrations'"),
    ],
)
def test_demo_bad_options_exit_2_before_anything_starts(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.run(["demo", "--database-url", "postgresql://nobody@127.0.0.1:1/none", *args])
    captured = capsys.readouterr()
    assert code == 2
    assert message in captured.err + captured.out
    assert "Traceback" not in captured.err


def test_demo_on_an_unreachable_server_exits_3_naming_it_without_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.run(["demo", "--database-url", "postgresql://ann:s3cret@127.0.0.1:1/shop", *SMALL])
    err = capsys.readouterr().err
    assert code == 3
    assert "cannot connect to postgresql://ann:***@127.0.0.1:1/shop" in err
    assert "s3cret" not in err


def test_demo_never_takes_its_server_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a server the demo must not touch only because the shell exports it
    monkeypatch.setenv("ZDMIGRATE_DATABASE_URL", "postgresql://ann:s3cret@127.0.0.1:1/prod")
    code = cli.run(["demo", *SMALL, "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "ZDMIGRATE_DATABASE_URL is set but not used" in captured.err
    assert "embedded" in json.loads(captured.out)["database"]


def test_demo_says_which_server_it_uses(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.run(["demo", "--database-url", "postgresql://ann:s3cret@127.0.0.1:1/shop", *SMALL])
    err = capsys.readouterr().err
    assert code == 3
    assert "demo: on the server postgresql://ann:***@127.0.0.1:1/shop (--database-url)" in err
    assert "s3cret" not in err
