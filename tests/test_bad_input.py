"""Bad input exits 2 with a message naming the file and line, no traceback, nothing changed."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.helpers import cli_env, copy_example, run_cli, write_migration
from zdmigrate.errors import MigrationFileError
from zdmigrate.migration import load_migrations


def _tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT schemaname || '.' || tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    return {r[0] for r in rows}


BAD_FILES = {
    "syntax": (
        "0003_broken",
        '''
        revision = "0003_broken"
        down_revision = "0002_rename_users_name"

        def expand(ctx)
            ctx.execute("SELECT 1")
        ''',
        ("0003_broken.py:4", "syntax error"),
    ),
    "unknown_phase_function": (
        "0003_typo",
        '''
        revision = "0003_typo"
        down_revision = "0002_rename_users_name"

        def expand(ctx):
            ctx.execute("ALTER TABLE users ADD COLUMN nickname text")

        def dual_writes(ctx):
            pass
        ''',
        ("0003_typo.py:7", "unknown phase function 'dual_writes'", "did you mean 'dual_write'"),
    ),
    "dangling_down_revision": (
        "0003_orphan",
        '''
        revision = "0003_orphan"
        down_revision = "0002_renamed_wrongly"

        def expand(ctx):
            ctx.execute("ALTER TABLE users ADD COLUMN nickname text")
        ''',
        ("0003_orphan.py:2", "down_revision '0002_renamed_wrongly' names no migration"),
    ),
    "bad_revision_id": (
        "0003_colon",
        '''
        revision = ":0003_colon"
        down_revision = "0002_rename_users_name"

        def expand(ctx):
            ctx.execute("ALTER TABLE users ADD COLUMN nickname text")
        ''',
        ("0003_colon.py:1", "revision ':0003_colon'", "not allowed"),
    ),
    "two_heads": (
        "0003_second_head",
        '''
        revision = "0003_second_head"
        down_revision = "0001_create_users"

        def expand(ctx):
            ctx.execute("ALTER TABLE users ADD COLUMN nickname text")
        ''',
        ("2 heads", "0003_second_head", "0002_rename_users_name"),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_migration_file_is_reported_with_file_and_line(tmp_path: Path, case: str) -> None:
    name, body, expected = BAD_FILES[case]
    folder = copy_example(tmp_path, upto="0002_rename_users_name")
    write_migration(folder, name, body)
    with pytest.raises(MigrationFileError) as info:
        load_migrations(folder)
    assert info.value.exit_code == 2
    for fragment in expected:
        assert fragment in str(info.value)


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_migration_file_exits_2_and_changes_nothing(
    tmp_path: Path, db_url: str, dsn: str, case: str
) -> None:
    name, body, expected = BAD_FILES[case]
    folder = copy_example(tmp_path, upto="0002_rename_users_name")
    write_migration(folder, name, body)
    before = _tables(dsn)
    result = run_cli(["phase", "advance"], cli_env(db_url, folder))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert expected[0] in result.stderr
    assert _tables(dsn) == before  # not even zdmigrate's own schema was created


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["phase", "advance", "0099_nope"], "unknown migration '0099_nope'"),
        (["phase", "advance", "--to", "contracted"], "unknown phase 'contracted'"),
        (["phase", "rollback", "--to", "half-way"], "unknown phase 'half-way'"),
        (["phase", "advance", "--frobnicate"], "No such option"),
        (["status", "--format", "yaml"], "Invalid value for '--format'"),
    ],
)
def test_bad_arguments_exit_2_and_change_nothing(
    tmp_path: Path, db_url: str, dsn: str, args: list[str], fragment: str
) -> None:
    folder = copy_example(tmp_path)
    before = _tables(dsn)
    result = run_cli(args, cli_env(db_url, folder))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert _tables(dsn) == before


def test_unreachable_database_exits_3_without_showing_the_password(tmp_path: Path) -> None:
    folder = copy_example(tmp_path)
    url = "postgresql://app:Sup3rS3cret@127.0.0.1:1/shop"
    result = run_cli(["status"], cli_env(url, folder))
    assert result.returncode == 3
    assert "cannot connect to postgresql://app:***@127.0.0.1:1/shop" in result.stderr
    assert "Sup3rS3cret" not in result.stderr + result.stdout


def test_missing_database_url_is_bad_usage(tmp_path: Path) -> None:
    folder = copy_example(tmp_path)
    result = run_cli(["status"], cli_env(None, folder))
    assert result.returncode == 2
    assert "no database URL given" in result.stderr


def test_migration_file_changed_after_a_phase_ran_is_refused(
    tmp_path: Path, db_url: str
) -> None:
    folder = copy_example(tmp_path, upto="0002_rename_users_name")
    env = cli_env(db_url, folder)
    assert run_cli(["phase", "advance"], env).returncode == 0  # 0001: pending -> complete
    assert run_cli(["phase", "advance"], env).returncode == 0  # 0002: expand
    path = folder / "0002_rename_users_name.py"
    path.write_text(path.read_text().replace("full_name text", "full_name varchar(200)"))
    result = run_cli(["phase", "advance"], env)
    assert result.returncode == 2
    assert "changed after its phases started" in result.stderr
    accepted = run_cli(["phase", "advance", "--accept-changed"], env)
    assert accepted.returncode == 0, accepted.stderr
