"""Adopting an existing Alembic history, and ctx.op (Alembic operations) in phase functions."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.helpers import cli_env, copy_example, run_cli, settings_for, write_migration
from zdmigrate import engine
from zdmigrate.errors import PhaseRefused
from zdmigrate.migration import load_migrations
from zdmigrate.phases import Phase


def test_adopt_reads_alembic_version_and_runs_nothing(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    folder = copy_example(tmp_path, upto="0002_rename_users_name")
    with psycopg.connect(dsn, autocommit=True) as conn:  # a database Alembic brought to 0001
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, email text)")
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('0001_create_users')")
    result = run_cli(["adopt", "--format", "json"], cli_env(db_url, folder))
    assert result.returncode == 0, result.stderr
    assert '"0001_create_users"' in result.stdout
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT id, phase FROM zdmigrate.migrations ORDER BY id").fetchall() == [
            ("0001_create_users", "contract")]
        assert conn.execute("SELECT to_regclass('public.orders')").fetchone() == (None,)  # not run
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
            "0001_create_users",)  # never written
    engine.advance(settings_for(db_url, folder))  # the next one starts from the baseline
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT phase FROM zdmigrate.migrations WHERE id = "
                            "'0002_rename_users_name'").fetchone() == ("expand",)


def test_adopt_refuses_a_migration_zdmigrate_already_started(tmp_path: Path, db_url: str) -> None:
    settings = settings_for(db_url, copy_example(tmp_path, upto="0002_rename_users_name"))
    engine.advance(settings)
    engine.advance(settings, "0002_rename_users_name", to="expand")
    with pytest.raises(PhaseRefused, match="already started 0002_rename_users_name"):
        engine.adopt(settings, "0002_rename_users_name")


def test_adopt_without_alembic_version_is_bad_input(tmp_path: Path, db_url: str) -> None:
    result = run_cli(["adopt"], cli_env(db_url, copy_example(tmp_path)))
    assert result.returncode == 2
    assert "alembic_version" in result.stderr


CTX_OP = '''
import sqlalchemy as sa

revision = "0003_nickname"
down_revision = "0002_rename_users_name"

def expand(ctx):
    ctx.op.add_column("users", sa.Column("nickname", sa.Text))
    ctx.op.create_index("users_nickname_idx", "users", ["nickname"],
                        postgresql_concurrently=True)

def rollback_expand(ctx):
    ctx.op.drop_index("users_nickname_idx", table_name="users",
                      postgresql_concurrently=True, if_exists=True)
    ctx.op.drop_column("users", "nickname", if_exists=True)
'''


def test_ctx_op_runs_alembic_operations_as_steps(tmp_path: Path, db_url: str, dsn: str) -> None:
    folder = copy_example(tmp_path, upto="0002_rename_users_name")
    write_migration(folder, "0003_nickname", CTX_OP)
    settings = settings_for(db_url, folder)
    engine.advance(settings)
    engine.advance(settings, "0002_rename_users_name", to="switch-read")
    (migration,) = [m for m in load_migrations(folder) if m.id == "0003_nickname"]
    steps = migration.render(Phase.EXPAND)
    assert [getattr(s, "autocommit", None) for s in steps] == [False, True]
    assert steps[1].source is not None and steps[1].source.line == 8  # ctx.op.create_index(
    transitions = engine.advance(settings, "0003_nickname", to="expand")
    assert transitions[0].steps_run == 2
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                            "'users_nickname_idx'::regclass").fetchone() == (True,)
    engine.rollback(settings, "0003_nickname")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE "
                            "table_name = 'users' AND column_name = 'nickname'").fetchone() == (0,)
