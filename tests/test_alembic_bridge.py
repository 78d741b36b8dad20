"""Every zdmigrate migration is also an Alembic revision: `alembic upgrade head` runs its phases."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config

from tests.alembic_project import BRIDGE, CREATE_ACCOUNTS, alembic_project
from zdmigrate.errors import BadInput
from zdmigrate.migration import load_migrations

RENAME = '''
"""rename accounts.username"""
from zdmigrate import ops

revision = "4f2e0c9a1b7d"
down_revision = "98106f172350"

operations = [
    ops.RenameColumn("accounts", "username", "handle"),
    ops.AddColumn("accounts", "nickname", "text"),
]
''' + BRIDGE

EMAIL_LOWER = '''
"""email_lower"""
revision = "c0ffee000003"
down_revision = "4f2e0c9a1b7d"


def expand(ctx):
    ctx.execute("ALTER TABLE accounts ADD COLUMN email_lower text")
    ctx.execute("CREATE INDEX CONCURRENTLY ix_accounts_email_lower ON accounts (email_lower)")


def rollback_expand(ctx):
    ctx.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_accounts_email_lower")
    ctx.execute("ALTER TABLE accounts DROP COLUMN IF EXISTS email_lower")


def backfill(ctx):
    ctx.backfill("accounts", set={"email_lower": "lower(email)"},
                 where="email_lower IS NULL AND email IS NOT NULL")
''' + BRIDGE


@pytest.fixture
def project(tmp_path: Path, db_url: str) -> Config:
    root = alembic_project(tmp_path, db_url, {
        "98106f172350_create_accounts": CREATE_ACCOUNTS,
        "4f2e0c9a1b7d_rename_accounts_username": RENAME,
        "c0ffee000003_email_lower": EMAIL_LOWER,
    })
    return Config(str(root / "alembic.ini"))


def columns(dsn: str, table: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum", [table]).fetchall()
    return [r[0] for r in rows]


def test_alembic_upgrade_head_runs_every_phase(project: Config, dsn: str) -> None:
    command.upgrade(project, "98106f172350")
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO accounts (id, username, email) VALUES (1, 'ann', 'Ann@X.org')")
    command.upgrade(project, "head")
    assert columns(dsn, "accounts") == ["id", "email", "handle", "nickname", "email_lower"]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT handle, email_lower FROM accounts").fetchall() == [
            ("ann", "ann@x.org")]
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
            "c0ffee000003",)
        # the rename carried the index over to the new column, and CONCURRENTLY ran
        indexes = {r[0] for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'accounts'")}
        assert any("(handle)" in i for i in indexes), indexes
        assert any("(email_lower)" in i for i in indexes), indexes
        # handle is NOT NULL as username was
        assert conn.execute(
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'accounts'::regclass "
            "AND attname = 'handle'").fetchone() == (True,)


def test_alembic_downgrade_undoes_phases_but_never_a_contract(project: Config, dsn: str) -> None:
    command.upgrade(project, "head")
    command.downgrade(project, "4f2e0c9a1b7d")
    assert "email_lower" not in columns(dsn, "accounts")
    with pytest.raises(BadInput, match="contract phase ran"):
        command.downgrade(project, "98106f172350")
    assert "handle" in columns(dsn, "accounts")  # nothing half-undone


def test_alembic_upgrade_sql_renders_every_phase_offline(project: Config) -> None:
    out = io.StringIO()
    project.stdout = out
    with redirect_stdout(out):
        command.upgrade(project, "head", sql=True)
    text = out.getvalue()
    assert 'ALTER TABLE accounts ADD COLUMN email_lower text;' in text
    assert 'UPDATE "accounts" SET "email_lower" = lower(email) WHERE email_lower IS NULL' in text
    assert "CREATE INDEX CONCURRENTLY ix_accounts_email_lower" in text
    assert "-- generated when it runs:" in text  # the index copies need the live catalog
    assert "UPDATE alembic_version SET version_num='c0ffee000003'" in text


def test_alembic_history_lists_zdmigrate_migrations(project: Config) -> None:
    out = io.StringIO()
    project.stdout = out
    command.history(project)
    text = out.getvalue()
    assert "4f2e0c9a1b7d" in text and "rename accounts.username" in text
    assert "c0ffee000003" in text


def test_zdmigrate_still_reads_the_files_as_phased_migrations(project: Config) -> None:
    folder = Path(project.get_main_option("script_location") or "") / "versions"
    kinds = {m.id: m.kind for m in load_migrations(folder)}
    assert kinds == {"98106f172350": "alembic", "4f2e0c9a1b7d": "operations",
                     "c0ffee000003": "phased"}
