"""An existing Alembic project adopts zdmigrate: new follows its ids, autogenerate, Alembic keeps working."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config

from tests.alembic_project import CREATE_ACCOUNTS, alembic_project
from tests.fix_db import Server, fresh_database
from tests.helpers import cli_env, run_cli, settings_for
from zdmigrate import engine
from zdmigrate.errors import BadInput
from zdmigrate.migration import load_migrations
from zdmigrate.phases import Phase

SECOND = '''
"""add accounts.created_at"""
from alembic import op
import sqlalchemy as sa

revision = "1c2d3e4f5a6b"
down_revision = "98106f172350"


def upgrade():
    op.add_column("accounts", sa.Column("created_at", sa.DateTime(timezone=True)))


def downgrade():
    op.drop_column("accounts", "created_at")
'''

MODELS = '''
import sqlalchemy as sa

metadata = sa.MetaData()
accounts = sa.Table(
    "accounts", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("handle", sa.Text, nullable=False),
    sa.Column("email", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Index("ix_accounts_username", "handle"),
)
'''


def project(tmp_path: Path, db_url: str) -> tuple[Path, Path]:
    root = alembic_project(tmp_path, db_url, {
        "98106f172350_create_accounts": CREATE_ACCOUNTS,
        "1c2d3e4f5a6b_add_created_at": SECOND,
    })
    return root, root / "migrations" / "versions"


def schema_of(dsn: str) -> list[tuple[str, str, str, str]]:
    with psycopg.connect(dsn) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name <> 'alembic_version' "
            "ORDER BY table_name, column_name").fetchall()
        indexes = conn.execute(
            "SELECT tablename, indexname, indexdef, '' FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version' ORDER BY indexname").fetchall()
    return [*columns, *indexes]


def test_new_in_a_hash_id_history_writes_an_alembic_style_revision(
    tmp_path: Path, db_url: str
) -> None:
    root, versions = project(tmp_path, db_url)
    result = run_cli(["new", "Rename accounts ünïcode", "--format", "json"],
                     cli_env(None, versions))
    assert result.returncode == 0, result.stderr
    [path] = [p for p in versions.glob("*.py") if "rename" in p.name]
    match = re.fullmatch(r"([0-9a-f]{12})_rename_accounts_unicode\.py", path.name)
    assert match, path.name
    text = path.read_text()
    assert f"revision = '{match.group(1)}'" in text  # the project's script.py.mako style
    assert "down_revision = '1c2d3e4f5a6b'" in text
    assert f"Revision ID: {match.group(1)}\nRevises: 1c2d3e4f5a6b" in text
    assert "upgrade, downgrade = alembic_functions(globals())" in text
    [new] = [m for m in load_migrations(versions) if m.id == match.group(1)]
    assert new.kind == "phased"
    command.upgrade(Config(str(root / "alembic.ini")), "head")  # Alembic runs it too


def test_adoption_path_end_to_end(tmp_path: Path, db_url: str, dsn: str, pg_server: Server) -> None:
    root, versions = project(tmp_path, db_url)
    alembic = Config(str(root / "alembic.ini"))
    command.upgrade(alembic, "head")                      # the team's history, applied by Alembic
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO accounts (id, username, email) VALUES (1, 'ann', 'a@x.org')")
    env = cli_env(db_url, versions)
    adopted = run_cli(["adopt"], env)
    assert adopted.returncode == 0, adopted.stderr
    assert "1c2d3e4f5a6b: adopted as complete" in adopted.stderr

    (tmp_path / "shopmodels.py").write_text(textwrap.dedent(MODELS))
    env.update(PYTHONPATH=f"{env['PYTHONPATH']}:{tmp_path}",
               ZDMIGRATE_TARGET_METADATA="shopmodels:metadata")
    made = run_cli(["new", "rename accounts username", "--autogenerate",
                    "--rename", "accounts.username=handle"], env)
    assert made.returncode == 0, made.stderr
    [path] = [p for p in versions.glob("*rename_accounts_username.py")]
    text = path.read_text()
    assert "ops.RenameColumn('accounts', 'username', 'handle')," in text
    assert "upgrade, downgrade = alembic_functions(globals())" in text

    settings = settings_for(db_url, versions)
    engine.advance(settings, to="contract", override_reason="test: no old app version runs")
    new_revision = path.name.split("_", 1)[0]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT handle FROM accounts").fetchall() == [("ann",)]
        # zdmigrate moved alembic_version with the contract, so Alembic agrees
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
            new_revision,)
    command.upgrade(alembic, "head")  # nothing to do for Alembic: no error, no change
    again = run_cli(["new", "nothing left", "--autogenerate"], env)
    assert again.returncode == 0, again.stderr
    [empty] = versions.glob("*nothing_left.py")
    assert "# no differences between the models and the database" in empty.read_text()
    empty.unlink()

    # a second, fresh database brought up by plain `alembic upgrade head` gets the same schema
    with fresh_database(pg_server) as other:
        other_url = pg_server.url_for(other)
        second = Config(str(root / "alembic.ini"))
        second.set_main_option("sqlalchemy.url",
                               other_url.replace("postgresql://", "postgresql+psycopg://", 1))
        command.upgrade(second, "head")
        assert schema_of(pg_server.dsn_for(other)) == schema_of(dsn)


def test_autogenerate_bad_input_writes_nothing(tmp_path: Path, db_url: str) -> None:
    _, versions = project(tmp_path, db_url)
    before = sorted(p.name for p in versions.iterdir())
    env = cli_env(db_url, versions)
    no_metadata = run_cli(["new", "x", "--autogenerate"], env)
    assert no_metadata.returncode == 2
    assert "no target_metadata is configured" in no_metadata.stderr
    (tmp_path / "brokenmodels.py").write_text("import no_such_module_zdm\n")
    env.update(PYTHONPATH=f"{env['PYTHONPATH']}:{tmp_path}",
               ZDMIGRATE_TARGET_METADATA="brokenmodels:metadata")
    broken = run_cli(["new", "x", "--autogenerate"], env)
    assert broken.returncode == 2
    assert "cannot import 'brokenmodels'" in broken.stderr
    assert "Traceback" not in broken.stderr
    (tmp_path / "okmodels.py").write_text("import sqlalchemy as sa\nmetadata = sa.MetaData()\n")
    env.update(ZDMIGRATE_TARGET_METADATA="okmodels:metadata")
    del env["ZDMIGRATE_DATABASE_URL"]
    no_database = run_cli(["new", "x", "--autogenerate"], env)
    assert no_database.returncode == 2
    assert "no database URL given" in no_database.stderr
    rename_alone = run_cli(["new", "x", "--rename", "a.b=c"], env)
    assert rename_alone.returncode == 2
    assert sorted(p.name for p in versions.iterdir()) == before


def test_before_adopt_advance_refuses_and_status_says_adopt(tmp_path: Path, db_url: str,
                                                            dsn: str) -> None:
    root, versions = project(tmp_path, db_url)
    command.upgrade(Config(str(root / "alembic.ini")), "head")
    env = cli_env(db_url, versions)
    advance = run_cli(["phase", "advance"], env)
    assert advance.returncode == 2, advance.stderr
    assert "migrated by Alembic up to 1c2d3e4f5a6b" in advance.stderr
    assert "zdmigrate adopt" in advance.stderr
    with psycopg.connect(dsn) as conn:  # refused before anything was created
        assert conn.execute("SELECT to_regnamespace('zdmigrate')").fetchone() == (None,)
    status = run_cli(["status", "--format", "json"], env)
    assert status.returncode == 0, status.stderr
    first = json.loads(status.stdout)["migrations"][0]
    assert first["message"] == "create accounts"
    assert first["blocked_by"][0]["check"] == "not-adopted"
    plan = run_cli(["plan"], env)
    assert "-- add accounts.created_at" in plan.stdout
    (tmp_path / "empty").mkdir()
    wrong_dir = run_cli(["phase", "advance"], cli_env(db_url, tmp_path / "empty"))
    assert wrong_dir.returncode == 2
    assert "point --migrations" in wrong_dir.stderr
    assert run_cli(["adopt"], env).returncode == 0
    assert run_cli(["phase", "advance"], env).returncode == 0  # nothing left to run twice


PHASED = '''
"""add accounts.bio"""
revision = "d00d00d00d00"
down_revision = "1c2d3e4f5a6b"


def expand(ctx):
    ctx.execute("ALTER TABLE accounts ADD COLUMN bio text")


def rollback_expand(ctx):
    ctx.execute("ALTER TABLE accounts DROP COLUMN IF EXISTS bio")


from zdmigrate.alembic_bridge import alembic_functions  # noqa: E402

upgrade, downgrade = alembic_functions(globals())
'''


def test_alembic_upgrade_records_what_it_ran_and_refuses_what_zdmigrate_has_in_flight(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    root, versions = project(tmp_path, db_url)
    alembic = Config(str(root / "alembic.ini"))
    command.upgrade(alembic, "head")
    env = cli_env(db_url, versions)
    assert run_cli(["adopt"], env).returncode == 0
    (versions / "d00d00d00d00_add_bio.py").write_text(textwrap.dedent(PHASED).lstrip())
    settings = settings_for(db_url, versions)

    engine.advance(settings, "d00d00d00d00", to="expand")
    with pytest.raises(BadInput, match="at expand under zdmigrate"):
        command.upgrade(alembic, "head")
    engine.rollback(settings, "d00d00d00d00", to="pending")

    command.upgrade(alembic, "head")  # Alembic runs it: zdmigrate records it complete
    statuses = {s.id: s.phase for s in engine.status(settings)}
    assert statuses["d00d00d00d00"] is Phase.CONTRACT
    assert engine.advance(settings) == []  # nothing runs twice
    assert "bio" in [c[1] for c in schema_of(dsn)]


def test_an_alembic_script_folder_means_its_versions(tmp_path: Path, db_url: str) -> None:
    root, versions = project(tmp_path, db_url)
    script_folder = root / "migrations"  # env.py, script.py.mako and versions/
    assert [m.id for m in load_migrations(script_folder)] == ["98106f172350", "1c2d3e4f5a6b"]
    made = run_cli(["new", "add bio"], cli_env(None, script_folder))
    assert made.returncode == 0, made.stderr
    assert [p.name for p in versions.glob("*_add_bio.py")]


def test_init_in_an_alembic_project_finds_its_revisions_and_says_adopt(
    tmp_path: Path, db_url: str
) -> None:
    root, _ = project(tmp_path, db_url)
    (root / "migrations").rename(root / "db")  # script_location is not ./migrations here
    ini = root / "alembic.ini"
    ini.write_text(ini.read_text().replace("%(here)s/migrations", "%(here)s/db"))
    command.upgrade(Config(str(ini)), "head")
    env = cli_env(db_url, None)
    env["ZDMIGRATE_TEST_CWD"] = str(root)
    done = run_cli(["init"], env)
    assert done.returncode == 0, done.stderr
    assert f"found {root / 'db' / 'versions'}" in done.stdout
    assert "an Alembic project" in done.stdout
    assert 'set migrations = "' in done.stdout
    assert "Alembic revision 1c2d3e4f5a6b, not adopted yet: run `zdmigrate adopt`" in done.stdout
    assert not (root / "migrations").exists()  # nothing created beside the project
    env["ZDMIGRATE_MIGRATIONS"] = str(root / "db")
    assert run_cli(["adopt"], env).returncode == 0
    again = run_cli(["init", "--format", "json"], env)
    assert json.loads(again.stdout)["adopt_revision"] is None


def test_new_renders_the_projects_script_template(tmp_path: Path, db_url: str) -> None:
    _, versions = project(tmp_path, db_url)
    mako = versions.parent / "script.py.mako"
    mako.write_text("# house style header\n" + mako.read_text())
    made = run_cli(["new", "add bio"], cli_env(None, versions))
    assert made.returncode == 0, made.stderr
    [path] = versions.glob("*_add_bio.py")
    text = path.read_text()
    assert text.startswith("# house style header\n")
    assert "branch_labels = None" in text and "Revises: 1c2d3e4f5a6b" in text
    assert "def upgrade():" not in text  # the phase functions and the bridge replace it
    assert "def expand(ctx):" in text
    [new] = [m for m in load_migrations(versions) if path.name.startswith(m.id)]
    assert new.kind == "phased" and new.down_revision == "1c2d3e4f5a6b"
