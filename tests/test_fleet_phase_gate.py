"""`phase advance` with the fleet check: contract refused while an old version is live
(via each source) and allowed once it leaves; "not proven"; the recorded override."""

from __future__ import annotations

import getpass
from pathlib import Path

import psycopg
import pytest

from tests.fix_cli import Cli
from tests.fleet_helpers import columns, phase_of, write_migrations
from zdmigrate.state import Store

RENAME = "0002_rename"


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    return write_migrations(tmp_path / "migrations")


@pytest.fixture(autouse=True)
def users_complete(cli: Cli) -> None:
    """0001_users is complete before each test starts."""
    assert cli("phase", "advance", "0001_users", "--to", "contract")[0] == 0


def at_switch_read(cli: Cli) -> None:
    code, _, err = cli("phase", "advance", RENAME, "--to", "switch-read")
    assert code == 0, err


def refused(cli: Cli) -> list[dict[str, object]]:
    code, data = cli.json("phase", "advance", RENAME)
    assert code == 1, data
    assert data["error"]["type"] == "PhaseRefused"
    return list(data["error"]["blockers"])


def test_contract_refused_while_old_heartbeat_lives_allowed_after_clean_stop(
    cli: Cli, dsn: str
) -> None:
    at_switch_read(cli)
    cli("fleet", "heartbeat", "--app", "shop", "--version", "2.0", "--instance", "web-2")
    cli("fleet", "heartbeat", "--app", "shop", "--version", "1.9", "--instance", "web-1")
    [b] = refused(cli)
    assert b["check"] == "fleet-old-version"
    assert (b["app"], b["version"], b["instance_id"], b["source"]) == (
        "shop", "1.9", "web-1", "heartbeat")
    assert b["last_seen"] and "upgrade or stop" in str(b["unblock"])
    assert phase_of(dsn, RENAME) == "switch-read" and "name" in columns(dsn)

    cli("fleet", "heartbeat", "--app", "shop", "--instance", "web-1", "--stop")
    assert cli("phase", "advance", RENAME)[0] == 0
    assert phase_of(dsn, RENAME) == "contract" and "name" not in columns(dsn)


def test_contract_refused_while_old_heartbeat_lives_allowed_after_its_ttl(
    cli: Cli, dsn: str
) -> None:
    at_switch_read(cli)
    cli("fleet", "heartbeat", "--app", "shop", "--version", "2.0", "--instance", "web-2")
    cli("fleet", "heartbeat", "--app", "shop", "--version", "1.9", "--instance", "web-1",
        "--ttl", "30s")
    assert [b["instance_id"] for b in refused(cli)] == ["web-1"]
    with psycopg.connect(dsn, autocommit=True) as conn:  # 31 seconds later, no word from it
        conn.execute("UPDATE zdmigrate.instances SET last_seen = now() - interval '31 s' "
                     "WHERE instance_id = 'web-1'")
    assert cli("phase", "advance", RENAME)[0] == 0


def test_contract_refused_while_old_session_connected_allowed_after_it_left(
    cli: Cli, dsn: str
) -> None:
    at_switch_read(cli)
    new = psycopg.connect(dsn, application_name="shop@2.0")
    with psycopg.connect(dsn, application_name="shop@1.9"):
        [b] = refused(cli)
        assert (b["source"], b["version"]) == ("session", "1.9")
    # it left, but counts until its session TTL runs out (fail safe)
    assert [b["version"] for b in refused(cli)] == ["1.9"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE zdmigrate.instances SET last_seen = now() - interval '10 min' "
                     "WHERE source = 'session' AND version = '1.9'")
    try:
        assert cli("phase", "advance", RENAME)[0] == 0
    finally:
        new.close()
    assert phase_of(dsn, RENAME) == "contract"


def test_contract_refused_while_old_version_declared_allowed_after_retire(
    cli: Cli, dsn: str
) -> None:
    at_switch_read(cli)
    cli("fleet", "declare", "--app", "shop", "--version", "2.0", "--instances", "3")
    cli("fleet", "declare", "--app", "shop", "--version", "1.9", "--instances", "2")
    blockers = refused(cli)
    assert [(b["instance_id"], b["source"]) for b in blockers] == [
        ("declared:1.9#1", "declared"), ("declared:1.9#2", "declared")]
    assert "fleet retire --app shop --version 1.9" in str(blockers[0]["message"])
    assert cli("fleet", "retire", "--app", "shop", "--version", "1.9")[0] == 0
    assert cli("phase", "advance", RENAME)[0] == 0


def test_no_fleet_data_is_not_proven_and_the_override_is_recorded(cli: Cli, dsn: str) -> None:
    at_switch_read(cli)
    [b] = refused(cli)
    assert b["check"] == "fleet-not-proven" and b["app"] == "shop"

    code, _out, err = cli("phase", "advance", RENAME, "--override-fleet-check")
    assert code == 2 and "--override-fleet-check needs --reason" in err
    assert phase_of(dsn, RENAME) == "switch-read"

    code, _, err = cli("phase", "advance", RENAME, "--override-fleet-check",
                       "--reason", "shop is not deployed in this region", "--actor", "alice")
    assert code == 0, err
    assert "overriding [fleet-not-proven]" in err
    assert phase_of(dsn, RENAME) == "contract" and "name" not in columns(dsn)
    with psycopg.connect(dsn) as conn:
        log = [r for r in Store(conn, "zdmigrate").phase_log.entries(RENAME) if r["to_phase"] == "contract"]
    assert [r["outcome"] for r in log] == ["refused", "done"]
    done = log[-1]
    assert done["actor"] == "alice"
    assert done["override_reason"] == "shop is not deployed in this region"
    assert "[fleet-not-proven]" in done["message"]
    assert done["started_at"] is not None and done["finished_at"] is not None


def test_backfill_refused_for_a_non_dual_writer_override_defaults_to_os_user(
    cli: Cli, dsn: str
) -> None:
    assert cli("phase", "advance", RENAME, "--to", "dual-write")[0] == 0
    cli("fleet", "heartbeat", "--app", "shop", "--version", "1.4", "--instance", "web-1")
    [b] = refused(cli)
    assert b["check"] == "fleet-dual-write" and b["required"] == "dual_write_from 1.5"
    code, _, err = cli("phase", "advance", RENAME, "--override-fleet-check", "--reason", "ok")
    assert code == 0, err
    with psycopg.connect(dsn) as conn:
        [done] = [r for r in Store(conn, "zdmigrate").phase_log.entries(RENAME)
                  if r["to_phase"] == "backfill" and r["outcome"] == "done"]
    assert done["actor"].startswith(getpass.getuser() + "@")
    assert done["override_reason"] == "ok"


def test_the_override_lifts_only_fleet_checks(cli: Cli, dsn: str) -> None:
    at_switch_read(cli)
    with psycopg.connect(dsn, autocommit=True) as conn:  # pretend 0001 lags behind
        conn.execute("UPDATE zdmigrate.migrations SET phase = 'switch-read' WHERE id = '0001_users'")
    code, data = cli.json("phase", "advance", RENAME, "--override-fleet-check", "--reason", "x")
    assert code == 1
    assert [b["check"] for b in data["error"]["blockers"]] == ["previous-migration"]
    assert phase_of(dsn, RENAME) == "switch-read"


@pytest.mark.parametrize("extra", [["--reason", "why"], ["--override-fleet-check", "--reason", " "]])
def test_reason_and_override_go_together(cli: Cli, dsn: str, extra: list[str]) -> None:
    code, _, err = cli("phase", "advance", RENAME, *extra)
    assert code == 2 and "Traceback" not in err
    assert phase_of(dsn, RENAME) == "pending"


