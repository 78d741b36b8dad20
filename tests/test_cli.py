"""The CLI contract: global options before or after the command, init, new, status JSON."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.helpers import EXAMPLE, cli_env, copy_example, run_cli
from zdmigrate import cli
from zdmigrate.migration import load_migrations


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_work_before_and_after_the_command(
    tmp_path: Path, db_url: str, where: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("ZDMIGRATE_DATABASE_URL", "ZDMIGRATE_MIGRATIONS"):
        monkeypatch.delenv(name, raising=False)
    folder = copy_example(tmp_path)
    options = ["--database-url", db_url, "--migrations", str(folder), "--format", "json"]
    args = [*options, "status"] if where == "before" else ["status", *options]
    assert cli.run(args) == 0
    data = json.loads(capsys.readouterr().out)
    ids = [m.id for m in load_migrations(folder)]
    assert [m["id"] for m in data["migrations"]] == ids
    first = data["migrations"][0]
    assert first["phase"] == "pending" and first["next"] == "expand"
    assert first["blocked_by"] == []
    second = data["migrations"][1]
    assert second["blocked_by"][0]["check"] == "previous-migration"


def test_init_is_idempotent_and_keeps_an_existing_directory(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    folder = copy_example(tmp_path)
    env = cli_env(db_url, folder)
    first = run_cli(["init"], env)
    second = run_cli(["init", "--format", "json"], env)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["schema_version"] >= 1
    assert sorted(p.name for p in folder.glob("*.py")) == sorted(
        p.name for p in EXAMPLE.glob("*.py"))
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM zdmigrate.schema_version").fetchone()[0] >= 1


def test_init_creates_the_directory_and_new_scaffolds_after_the_head(
    tmp_path: Path, db_url: str
) -> None:
    folder = tmp_path / "db" / "migrations"
    env = cli_env(db_url, folder)
    assert run_cli(["init"], env).returncode == 0
    assert folder.is_dir()
    assert run_cli(["new", "create users"], env).returncode == 0
    created = run_cli(["new", "Rename users.name", "--format", "json"], env)
    path = Path(json.loads(created.stdout)["path"])
    assert path.name == "0002_rename_users_name.py"
    migrations = load_migrations(folder)
    assert [m.id for m in migrations] == ["0001_create_users", "0002_rename_users_name"]
    assert migrations[1].down_revision == "0001_create_users"
    assert migrations[1].kind == "phased"


def test_status_json_follows_the_contract_after_advancing(tmp_path: Path, db_url: str) -> None:
    folder = copy_example(tmp_path, upto="0002_rename_users_name")
    env = cli_env(db_url, folder)
    assert run_cli(["phase", "advance"], env).returncode == 0
    assert run_cli(["phase", "advance", "--dry-run"], env).returncode == 0
    result = run_cli(["status", "--format", "json"], env)
    data = json.loads(result.stdout)
    phases = {m["id"]: (m["phase"], m["next"]) for m in data["migrations"]}
    assert phases == {"0001_create_users": ("contract", None),
                      "0002_rename_users_name": ("pending", "expand")}  # dry run changed nothing


def test_dry_run_shows_the_sql_and_changes_nothing(tmp_path: Path, db_url: str, dsn: str) -> None:
    folder = copy_example(tmp_path, upto="0002_rename_users_name")
    env = cli_env(db_url, folder)
    assert run_cli(["phase", "advance"], env).returncode == 0
    dry = run_cli(["phase", "advance", "0002", "--to", "switch-read", "--dry-run", "--format",
                   "json"], env)
    assert dry.returncode == 0, dry.stderr
    transitions = json.loads(dry.stdout)["transitions"]
    assert [t["to"] for t in transitions] == ["expand", "dual-write", "backfill", "switch-read"]
    assert transitions[0]["steps"][0] == "ALTER TABLE public.users ADD COLUMN full_name text"
    # contract's gate is checked in a dry run too: no fleet data, so it is not proven
    refused = run_cli(["phase", "advance", "0002", "--to", "contract", "--dry-run"], env)
    assert refused.returncode == 1
    assert "fleet-not-proven" in refused.stderr
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE "
                            "table_name = 'users' AND column_name = 'full_name'").fetchone() == (0,)


def test_refused_phase_exits_1_with_reasons_in_json(tmp_path: Path, db_url: str) -> None:
    folder = copy_example(tmp_path, upto="0002_rename_users_name")
    result = run_cli(["phase", "advance", "0002", "--format", "json"], cli_env(db_url, folder))
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "PhaseRefused"
    assert error["blockers"][0]["check"] == "previous-migration"
