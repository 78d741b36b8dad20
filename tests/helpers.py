"""Small helpers shared by the tests: example migrations, settings, running the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from zdmigrate.config import Settings
from zdmigrate.steps import GeneratedSQLStep, SQLStep, Step

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "migrations_example"


def copy_example(tmp_path: Path, *, upto: str | None = None) -> Path:
    """A copy of migrations_example (optionally only up to and including `upto`)."""
    target = tmp_path / "migrations"
    target.mkdir()
    for path in sorted(EXAMPLE.glob("*.py")):
        shutil.copy(path, target / path.name)
        if upto and path.stem == upto:
            break
    return target


def write_migration(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body).lstrip())
    return path


def one_migration(tmp_path: Path, body: str = "", *, operations: str | None = None) -> Path:
    """A migrations folder, `tmp_path/m`, holding one migration, ``0001_a``.

    Its file is the two revision lines, then `body` (dedented: a blank first line
    stays, so `def expand` starting on line 4 puts its first statement on line 5),
    then, when given, ``operations = OPERATIONS`` with ``sa`` and ``ops`` imported.
    """
    folder = tmp_path / "m"
    folder.mkdir()
    text = 'revision = "0001_a"\ndown_revision = None\n' + textwrap.dedent(body)
    if operations is not None:
        text = ("import sqlalchemy as sa\nfrom zdmigrate import ops\n"
                f"{text}operations = {operations}\n")
    write_migration(folder, "0001_a", text)
    return folder


def settings_for(url: str, migrations: Path, **changes: object) -> Settings:
    base = Settings.load({"database_url": url, "migrations": str(migrations)}, environ={},
                         pyproject=Path("/nonexistent/pyproject.toml"))
    return base.with_(**changes) if changes else base


def cli_env(url: str | None, migrations: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZDMIGRATE_")}
    if url:
        env["ZDMIGRATE_DATABASE_URL"] = url
    if migrations:
        env["ZDMIGRATE_MIGRATIONS"] = str(migrations)
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m zdmigrate ARGS` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "zdmigrate", *args], env=env, capture_output=True, text=True,
        timeout=timeout, cwd=env.get("ZDMIGRATE_TEST_CWD", str(ROOT)),
    )


def declare_deployed(settings: Settings, app: str = "shop", version: str = "2.0") -> None:
    """Tell zdmigrate that `version` of `app` is what runs now, as a deploy system would."""
    from zdmigrate import engine

    engine.fleet_declare(settings, app=app, version=version, instances=1)


def rows_done(dsn: str, table: str = "backfills") -> int:
    """Rows the backfills recorded done, summed over zdmigrate's `table` (``backfills``, or
    ``backfill_ranges`` for what the ranges hold); 0 before the table exists."""
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regclass(%s)", [f"zdmigrate.{table}"]).fetchone() == (None,):
            return 0
        row = conn.execute(sql.SQL("SELECT coalesce(sum(rows_done), 0) FROM {}").format(
            sql.Identifier("zdmigrate", table))).fetchone()
    return int(row[0]) if row else 0


def run_contract_steps_as_done(
    conn: psycopg.Connection[Any], migration_id: str, steps: Sequence[Step]
) -> None:
    """Run `steps` (the first ones of a contract) and record each done, as a contract
    run killed right after them leaves the database (`conn` in autocommit)."""
    from zdmigrate import db

    for index, step in enumerate(steps):
        if isinstance(step, GeneratedSQLStep):
            for statement in db.generated_statements(conn, step):
                conn.execute(statement.sql.encode())
        else:
            assert isinstance(step, SQLStep)
            conn.execute(step.sql.encode())
        conn.execute("INSERT INTO zdmigrate.steps VALUES (%s, 'contract', 'advance', %s, %s)",
                     [migration_id, index, step.key])
