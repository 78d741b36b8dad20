"""Hostile input (issue 14, items 5, 14, 15): exit 2 with one plain sentence, nothing changed."""

from __future__ import annotations

from pathlib import Path

import pglast
import psycopg
import pytest

from tests.helpers import cli_env, copy_example, one_migration, run_cli
from zdmigrate.config import Settings
from zdmigrate.errors import ConfigError


def _schemas(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT nspname FROM pg_namespace").fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("value", ["0", "0s", "0.0004s", "0.5ms", "1ms"])
def test_a_lock_timeout_that_postgresql_would_read_as_none_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="lock_timeout"):
        Settings.load({"lock_timeout": value}, environ={}, pyproject=Path("/nonexistent"))


@pytest.mark.parametrize("value", ["99999999999999s", "1h", "nan"])
def test_an_absurd_lock_timeout_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="lock_timeout"):
        Settings.load({"lock_timeout": value}, environ={}, pyproject=Path("/nonexistent"))


def test_a_statement_timeout_under_a_millisecond_is_refused_but_zero_means_none() -> None:
    with pytest.raises(ConfigError, match="statement_timeout"):
        Settings.load({"statement_timeout": "0.2ms"}, environ={}, pyproject=Path("/x"))
    with pytest.raises(ConfigError, match="statement_timeout"):
        Settings.load({"statement_timeout": "99999999999999s"}, environ={}, pyproject=Path("/x"))
    assert Settings.load({"statement_timeout": "0"}, environ={},
                         pyproject=Path("/x")).statement_timeout == 0


@pytest.mark.parametrize("value", ["0", "0.5ms", "99999999999999s"])
def test_cli_refuses_bad_lock_timeout_with_exit_2(tmp_path: Path, db_url: str, dsn: str,
                                                   value: str) -> None:
    folder = copy_example(tmp_path, upto="0001_create_users")
    before = _schemas(dsn)
    result = run_cli(["--lock-timeout", value, "phase", "advance"], cli_env(db_url, folder))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "lock_timeout" in result.stderr and "Traceback" not in result.stderr
    assert _schemas(dsn) == before


def test_a_migration_file_that_is_not_utf8_is_bad_input(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "0001_a.py").write_bytes(
        b'revision = "0001_a"\ndown_revision = None\n# caf\xe9\n'
        b'def expand(ctx):\n    ctx.execute("SELECT 1")\n'
    )
    result = run_cli(["plan"], cli_env(None, folder))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "0001_a.py" in result.stderr and "UTF-8" in result.stderr
    assert "internal error" not in result.stderr


@pytest.mark.parametrize("where", ["import", "phase"])
@pytest.mark.parametrize("command", [["plan"], ["lint"], ["phase", "advance"]])
def test_a_migration_calling_sys_exit_does_not_end_zdmigrate_quietly(
    tmp_path: Path, db_url: str, command: list[str], where: str
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    body = (
        'import sys\nrevision = "0001_a"\ndown_revision = None\nsys.exit(0)\n'
        if where == "import" else
        'import sys\nrevision = "0001_a"\ndown_revision = None\n'
        'def expand(ctx):\n    sys.exit(0)\n'
    )
    (folder / "0001_a.py").write_text(body)
    args = [*command, str(folder)] if command == ["lint"] else command
    result = run_cli(args, cli_env(db_url, folder))
    assert result.returncode != 0, (result.stdout, result.stderr)
    if command != ["lint"]:
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert "sys.exit" in result.stderr or "SystemExit" in result.stderr


def test_phase_advance_with_an_empty_migration_name_is_refused(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    folder = copy_example(tmp_path, upto="0001_create_users")
    before = _schemas(dsn)
    result = run_cli(["phase", "advance", ""], cli_env(db_url, folder))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "migration" in result.stderr
    assert _schemas(dsn) == before


def test_a_bind_parameter_count_mismatch_is_bad_input(tmp_path: Path, db_url: str) -> None:
    folder = one_migration(tmp_path, '''
        def expand(ctx):
            ctx.execute("SELECT %s, %s", [1])
    ''')
    result = run_cli(["phase", "advance"], cli_env(db_url, folder))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "0001_a.py:5" in result.stderr and "placeholders" in result.stderr


def test_a_role_without_access_to_the_state_schema_is_told_so(
    tmp_path: Path, db_url: str, dsn: str, dbname: str
) -> None:
    folder = copy_example(tmp_path, upto="0001_create_users")
    assert run_cli(["init"], cli_env(db_url, folder)).returncode == 0
    role = f"zdm_nobody_{dbname}"[:60]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP ROLE IF EXISTS {}").format(psycopg.sql.Identifier(role)))
        conn.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN").format(psycopg.sql.Identifier(role)))
    try:
        url = db_url.replace("postgres@", f"{role}@", 1)
        assert role in url
        for args in (["status"], ["phase", "advance"]):
            result = run_cli(args, cli_env(url, folder))
            assert result.returncode == 2, (args, result.stdout, result.stderr)
            assert "this is a bug" not in result.stderr
            assert "permission" in result.stderr and "zdmigrate" in result.stderr
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP OWNED BY {}; DROP ROLE {}").format(
                psycopg.sql.Identifier(role), psycopg.sql.Identifier(role)))


def test_an_exit_2_error_found_after_connecting_creates_no_state_schema(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    """An operation that does not fit the schema is refused before zdmigrate's schema exists."""
    folder = one_migration(tmp_path, operations='[ops.AddColumn("no_such_table", "c", "text")]')
    result = run_cli(["phase", "advance"], cli_env(db_url, folder))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "zdmigrate" not in _schemas(dsn)


def test_a_dollar_in_a_column_name_keeps_the_generated_sql_valid(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute('CREATE TABLE t (id int PRIMARY KEY, "a$zdm$b" text)')
        conn.execute("INSERT INTO t VALUES (1, 'x')")
    folder = one_migration(tmp_path, operations='[ops.RenameColumn("t", "a$zdm$b", "c$zdm$d")]')
    result = run_cli(["phase", "advance", "--to", "backfill"], cli_env(db_url, folder))
    assert result.returncode == 0, (result.stdout, result.stderr)
    with psycopg.connect(dsn) as conn:
        assert conn.execute('SELECT "c$zdm$d" FROM t').fetchone() == ("x",)


def test_plan_keeps_a_newline_in_an_identifier_inside_its_comment(
    tmp_path: Path, db_url: str
) -> None:
    folder = one_migration(
        tmp_path, operations='[ops.RenameColumn("t", "old", "new\\nDROP TABLE users;")]')
    result = run_cli(["plan"], cli_env(None, folder))
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "DROP TABLE users" in result.stdout  # inside quoted names and comments only
    text = "\n".join(line for line in result.stdout.splitlines() if not line.startswith("=="))
    for raw in pglast.parse_sql(text):
        assert not isinstance(raw.stmt, pglast.ast.DropStmt) or "users" not in str(
            raw.stmt.objects), result.stdout
