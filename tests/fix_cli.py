"""A pytest plugin (loaded by tests/conftest.py): `cli`, the ``zdmigrate`` command in-process.

`cli` runs against the test's fresh database and ``tmp_path/migrations``, in
``tmp_path``, with no ``ZDMIGRATE_*`` variable of the caller's environment
leaking in. A test module that needs migrations in that folder overrides
`migrations_dir` (a fixture that writes them and returns the folder).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest

from zdmigrate.cli import cli as cli_group
from zdmigrate.cli import run


class Cli:
    """Runs `zdmigrate` in-process against one database and migrations directory."""

    def __init__(self, capsys: pytest.CaptureFixture[str], url: str | None, migrations: Path):
        self.capsys = capsys
        self.url = url
        self.migrations = migrations

    def __call__(self, *args: str) -> tuple[int, str, str]:
        argv = list(args)
        takes = _options_of(args)  # each command takes only its own options
        if "migrations" in takes:
            argv += ["--migrations", str(self.migrations)]
        if self.url and "database_url" in takes:
            argv += ["--database-url", self.url]
        self.capsys.readouterr()
        code = run(argv)
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def json(self, *args: str) -> tuple[int, Any]:
        code, out, err = self(*args, "--format", "json")
        return code, json.loads(out) if out.strip() else {"stderr": err}


def _options_of(args: tuple[str, ...]) -> set[str]:
    """The names of the options the command named by `args` takes."""
    command: click.Command = cli_group
    for word in args:
        if not isinstance(command, click.Group) or word not in command.commands:
            break
        command = command.commands[word]
    return {param.name for param in command.params if param.name}


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    """The migrations folder `cli` passes (not created; override it to write migrations)."""
    return tmp_path / "migrations"


@pytest.fixture
def cli(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, migrations_dir: Path) -> Cli:
    monkeypatch.chdir(tmp_path)
    for name in ("ZDMIGRATE_DATABASE_URL", "ZDMIGRATE_MIGRATIONS", "ZDMIGRATE_ACTOR"):
        monkeypatch.delenv(name, raising=False)
    return Cli(capsys, db_url, migrations_dir)
