"""Fail closed, end to end through ``zdmigrate phase advance``: when a gate cannot say
yes (its query errors, lint finds an error, the fleet or the state cannot be read),
the phase is refused and nothing changes.

Each test runs the CLI in a subprocess as a user would and checks the exit code,
the message, that the phase did not move and that the phase's SQL did not run.
Privileges are taken away from a role of the test's own (`runner`), never from
the server's superuser the other tests use.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.fix_db import Server
from tests.helpers import cli_env, copy_example, run_cli, write_migration

RENAME = "0002_rename_users_name"
_roles = itertools.count()


@dataclass
class Runner:
    """A non-superuser role that runs zdmigrate and owns what it creates."""

    name: str
    url: str
    dsn: str


@pytest.fixture
def runner(pg_server: Server, dbname: str, dsn: str) -> Iterator[Runner]:
    role = f"zdm_runner_{os.getpid()}_{next(_roles)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(dbname), sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(sql.Identifier(role)))
    as_role = Server(make_conninfo(pg_server.admin_dsn, user=role), pg_server.kind)
    try:
        yield Runner(role, as_role.url_for(dbname), as_role.dsn_for(dbname))
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(
                sql.Identifier(dbname), sql.Identifier(role)))
            conn.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(
                sql.Identifier(role)))
            conn.execute(sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE usename = %s"), [role])
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def advance(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any] | None, str]:
    """`zdmigrate --format json phase advance ARGS`: (exit code, JSON or None, stderr)."""
    done = run_cli(["--format", "json", "phase", "advance", *args], env)
    try:
        data = json.loads(done.stdout) if done.stdout.strip() else None
    except ValueError:
        data = None
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    return done.returncode, data, done.stdout + done.stderr


def phase_of(dsn: str, migration: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT phase FROM zdmigrate.migrations WHERE id = %s",
                           [migration]).fetchone()
    return str(row[0]) if row else "pending"


def refusals(dsn: str, migration: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT to_phase FROM zdmigrate.phase_log WHERE migration_id = %s "
            "AND outcome = 'refused' ORDER BY id", [migration]).fetchall()
    return [str(r[0]) for r in rows]


def has_column(dsn: str, table: str, column: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = %s AND column_name = %s", [table, column]).fetchone()
    return row == (1,)


def blocker_checks(data: dict[str, Any] | None) -> list[str]:
    """The `check` of every blocker the JSON error names."""
    assert data is not None
    found = json.dumps(data)
    return sorted({b for b in _walk_checks(data)}) or [found]


def _walk_checks(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        if "check" in data and isinstance(data["check"], str):
            yield data["check"]
        for value in data.values():
            yield from _walk_checks(value)
    elif isinstance(data, list):
        for value in data:
            yield from _walk_checks(value)


def shop_until_backfill(tmp_path: Path, url: str) -> dict[str, str]:
    folder = copy_example(tmp_path, upto=RENAME)
    env = cli_env(url, folder)
    code, _, out = advance(env, "0001_create_users")
    assert code == 0, out
    code, _, out = advance(env, RENAME, "--to", "backfill")
    assert code == 0, out
    return env


# -- a verification query that errors refuses switch-read -----------------------------


@pytest.mark.parametrize("breakage", ["column-renamed", "select-revoked"])
def test_verification_error_refuses_switch_read(
    tmp_path: Path, runner: Runner, dsn: str, breakage: str
) -> None:
    env = shop_until_backfill(tmp_path, runner.url)
    assert phase_of(dsn, RENAME) == "backfill"
    with psycopg.connect(dsn, autocommit=True) as conn:
        if breakage == "column-renamed":
            conn.execute("ALTER TABLE users RENAME COLUMN full_name TO full_name_gone")
        else:
            conn.execute(sql.SQL("REVOKE SELECT ON users FROM {}").format(
                sql.Identifier(runner.name)))
    code, data, out = advance(env, RENAME, "--to", "switch-read")
    assert code == 1, out
    assert "backfill-unverified" in blocker_checks(data), out
    assert "cannot verify" in out
    assert phase_of(dsn, RENAME) == "backfill"
    assert refusals(dsn, RENAME) == ["switch-read"]
    with psycopg.connect(dsn) as conn:  # switch-read's SQL did not run
        assert conn.execute("SELECT count(*) FROM pg_constraint "
                            "WHERE conname = 'users_full_name_not_null'").fetchone() == (0,)


# -- lint errors refuse a phase they do not belong in ---------------------------------


LINT_CASES = {
    # destructive DDL in expand: legal only in contract
    "drop-column": "ALTER TABLE accounts DROP COLUMN nickname",
    # a lock-unsafe statement: CREATE INDEX without CONCURRENTLY on an existing table
    "create-index-not-concurrently": "CREATE INDEX accounts_nickname_idx ON accounts (nickname)",
}


@pytest.mark.parametrize("rule", sorted(LINT_CASES))
def test_lint_error_refuses_advance(tmp_path: Path, db_url: str, dsn: str, rule: str) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    write_migration(folder, "0001_accounts", '''
        revision = "0001_accounts"
        down_revision = None

        def expand(ctx):
            ctx.execute("CREATE TABLE accounts (id bigint PRIMARY KEY, nickname text)")
        ''')
    write_migration(folder, "0002_change", f'''
        revision = "0002_change"
        down_revision = "0001_accounts"

        def expand(ctx):
            ctx.execute("ALTER TABLE accounts ADD COLUMN created_at timestamptz")
            ctx.execute("{LINT_CASES[rule]}")
        ''')
    env = cli_env(db_url, folder)
    code, _, out = advance(env, "0001_accounts")
    assert code == 0, out
    code, data, out = advance(env, "0002_change")
    assert code == 1, out
    assert blocker_checks(data) == ["lint"], out
    assert f"[{rule}]" in out
    assert phase_of(dsn, "0002_change") == "pending"
    assert refusals(dsn, "0002_change") == ["expand"]
    # nothing of the phase ran, not even its harmless first statement
    assert not has_column(dsn, "accounts", "created_at")
    assert has_column(dsn, "accounts", "nickname")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('accounts_nickname_idx')").fetchone() == (None,)


# -- unreadable fleet data refuses contract ------------------------------------------


def test_unreadable_fleet_data_refuses_contract(tmp_path: Path, runner: Runner, dsn: str) -> None:
    env = shop_until_backfill(tmp_path, runner.url)
    code, _, out = advance(env, RENAME, "--to", "switch-read")
    assert code == 0, out
    declared = run_cli(["fleet", "declare", "--app", "shop", "--version", "2.0"], env)
    assert declared.returncode == 0, declared.stderr
    # control: with the fleet readable, contract would be allowed
    code, _, out = advance(env, RENAME, "--to", "contract", "--dry-run")
    assert code == 0, out
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("REVOKE ALL ON zdmigrate.instances FROM {}").format(
            sql.Identifier(runner.name)))
    code, data, out = advance(env, RENAME, "--to", "contract")
    assert code == 1, out
    assert blocker_checks(data) == ["fleet-unreadable"], out
    assert "permission denied" in out and "instances" in out, out
    assert refusals(dsn, RENAME) == ["contract"]
    assert phase_of(dsn, RENAME) == "switch-read"
    assert has_column(dsn, "users", "name")  # contract's DROP COLUMN did not run


# -- an unreadable state schema refuses advance -------------------------------------


@pytest.mark.parametrize("taken", ["schema-usage", "migrations-select"])
def test_unreadable_state_refuses_advance(
    tmp_path: Path, runner: Runner, dsn: str, taken: str
) -> None:
    env = shop_until_backfill(tmp_path, runner.url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        if taken == "schema-usage":
            conn.execute(sql.SQL("REVOKE USAGE ON SCHEMA zdmigrate FROM {}").format(
                sql.Identifier(runner.name)))
        else:
            conn.execute(sql.SQL("REVOKE SELECT ON zdmigrate.migrations FROM {}").format(
                sql.Identifier(runner.name)))
    code, _, out = advance(env, RENAME, "--to", "switch-read")
    assert code == 2, out  # the role is misconfigured: bad input, nothing changed (issue 14)
    assert "permission denied" in out and "zdmigrate" in out, out
    assert phase_of(dsn, RENAME) == "backfill"
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_constraint "
                            "WHERE conname = 'users_full_name_not_null'").fetchone() == (0,)
