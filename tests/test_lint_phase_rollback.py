"""lint warns of a phase function that `phase rollback` could not undo (issue 17)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import cli_env, run_cli, write_migration
from zdmigrate.lint import lint_migration
from zdmigrate.migration import load_migrations

WITHOUT = '''
revision = "0001_sync"
down_revision = None


def expand(ctx):
    ctx.execute("ALTER TABLE users ADD COLUMN full_name text")


def rollback_expand(ctx):
    ctx.execute("ALTER TABLE users DROP COLUMN IF EXISTS full_name")


def dual_write(ctx):
    ctx.execute("CREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION f()")


def backfill(ctx):
    ctx.backfill("users", set={"full_name": "name"}, where="full_name IS NULL")
'''


def test_dual_write_without_its_rollback_is_a_warning_at_the_function(tmp_path: Path) -> None:
    path = write_migration(tmp_path, "0001_sync", WITHOUT)
    [migration] = load_migrations(tmp_path)
    found = [v for v in lint_migration(migration, rollbacks=True) if v.rule == "phase-without-rollback"]
    assert [(v.line, v.phase, v.is_error) for v in found] == [(13, "dual-write", False)]
    assert "rollback_dual_write" in found[0].message
    assert found[0].path == str(path.resolve())


def test_with_its_rollback_or_suppressed_there_is_none(tmp_path: Path) -> None:
    text = WITHOUT + '''

def rollback_dual_write(ctx):
    ctx.execute("DROP TRIGGER IF EXISTS t ON users")
'''
    write_migration(tmp_path, "0001_sync", text)
    [migration] = load_migrations(tmp_path)
    assert not [v for v in lint_migration(migration, rollbacks=True) if v.rule == "phase-without-rollback"]
    other = tmp_path / "other"
    other.mkdir()
    write_migration(other, "0001_sync", WITHOUT.replace(
        "def dual_write(ctx):",
        "def dual_write(ctx):  # zdmigrate: ignore[phase-without-rollback] one-way by design"))
    [migration] = load_migrations(other)
    assert not [v for v in lint_migration(migration, rollbacks=True) if v.rule == "phase-without-rollback"]


def test_zdmigrate_lint_reports_it(tmp_path: Path) -> None:
    write_migration(tmp_path, "0001_sync", WITHOUT)
    result = run_cli(["lint", str(tmp_path), "--format", "json"], cli_env(None, tmp_path))
    assert result.returncode == 0, result.stderr  # a warning: exit 0 unless --strict
    assert '"phase-without-rollback"' in result.stdout
    strict = run_cli(["lint", str(tmp_path), "--strict"], cli_env(None, tmp_path))
    assert strict.returncode == 1
