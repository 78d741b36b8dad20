"""`zdmigrate fleet`, `fleet heartbeat`, `fleet declare`, `fleet retire` from the command line."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.fix_cli import Cli


def test_fleet_lists_the_three_sources_as_json_and_text(cli: Cli, dsn: str) -> None:
    assert cli("fleet", "heartbeat", "--app", "shop", "--version", "2.0", "--instance", "web-1",
               "--ttl", "90s")[0] == 0
    assert cli("fleet", "declare", "--app", "shop", "--version", "1.9", "--instances", "2",
               "--ttl", "1h")[0] == 0
    with psycopg.connect(dsn, application_name="admin@3.1"):
        code, data = cli.json("fleet")
        text_code, text, _ = cli("fleet")
    assert code == 0 and text_code == 0
    got = [(i["app"], i["version"], i["source"], i["instance_id"]) for i in data["instances"]]
    assert got[:3] == [
        ("admin", "3.1", "session", got[0][3]),
        ("shop", "1.9", "declared", "declared:1.9#1"),
        ("shop", "1.9", "declared", "declared:1.9#2"),
    ]
    assert got[3] == ("shop", "2.0", "heartbeat", "web-1")
    heartbeat = data["instances"][3]
    assert heartbeat["ttl_seconds"] == 90 and heartbeat["last_seen"]
    assert data["instances"][1]["ttl_seconds"] == 3600
    assert text.splitlines()[0].split() == [
        "APP", "VERSION", "SOURCE", "INSTANCE", "LAST", "SEEN", "COUNTS", "UNTIL"]
    assert "declared:1.9#2" in text and "web-1" in text

    code, data = cli.json("fleet", "--app", "shop")
    assert {i["app"] for i in data["instances"]} == {"shop"}

    assert cli("fleet", "retire", "--app", "shop", "--version", "1.9")[1].startswith(
        "retired shop 1.9: 2 row(s) removed")
    code, out, _ = cli("fleet", "heartbeat", "--app", "shop", "--instance", "web-1", "--stop")
    assert code == 0 and out.strip() == "heartbeat removed"
    code, data = cli.json("fleet", "--app", "shop")
    assert data == {"instances": []}


def test_heartbeat_defaults_to_host_name_and_configured_ttl(
    cli: Cli, tmp_path: Path
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.zdmigrate.fleet]\nheartbeat_ttl = "2min"\n')
    code, data = cli.json("fleet", "heartbeat", "--app", "shop", "--version", "2.0")
    assert code == 0
    import socket

    assert data["instance"]["instance_id"] == socket.gethostname()
    assert data["instance"]["ttl_seconds"] == 120


def test_an_empty_fleet_says_so(cli: Cli) -> None:
    code, out, _ = cli("fleet")
    assert code == 0 and out.startswith("no live instances")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fleet", "heartbeat", "--app", "shop", "--version", "latest"], "not a PEP 440 version"),
        (["fleet", "heartbeat", "--app", "shop"], "needs --version"),
        (["fleet", "heartbeat", "--app", "shop", "--version", "2", "--ttl", "soon"],
         "is not a duration"),
        (["fleet", "heartbeat", "--app", "shop", "--version", "2", "--ttl", "0"],
         "must be more than 0 seconds"),
        (["fleet", "declare", "--app", "shop", "--version", "2", "--instances", "0"],
         "--instances"),
        (["fleet", "declare", "--app", "my shop", "--version", "2"], "without spaces"),
        (["fleet", "retire", "--app", "shop"], "Missing option '--version'"),
        (["fleet", "--format", "github"], "'github' is not one of 'text', 'json'"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    cli: Cli, dsn: str, args: list[str], message: str
) -> None:
    code, out, err = cli(*args)
    assert code == 2, (out, err)
    assert message in out + err and "Traceback" not in out + err
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT to_regclass('zdmigrate.instances')").fetchone()
    assert row is not None and row[0] is None  # not even the state schema was created


def test_without_a_database_url_it_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZDMIGRATE_DATABASE_URL", raising=False)
    cli = Cli(capsys, None, tmp_path)
    code, _, err = cli("fleet")
    assert code == 2 and "no database URL given" in err


def test_unreachable_database_exits_3_without_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cli = Cli(capsys, "postgresql://u:s3cret@127.0.0.1:1/db", tmp_path)
    code, out, err = cli("fleet", "declare", "--app", "shop", "--version", "2")
    assert code == 3 and "s3cret" not in out + err
