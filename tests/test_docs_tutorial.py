"""docs/tutorial.md works as written: its commands exist with the options it uses, and its
migration files load and lint clean."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from tests.helpers import ROOT
from zdmigrate import cli
from zdmigrate.migration import load_migrations

TUTORIAL = ROOT / "docs" / "tutorial.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", TUTORIAL.read_text(), re.M | re.S)


def _zdmigrate_lines() -> list[list[str]]:
    lines = [line.split("#")[0].strip() for block in _blocks("bash") for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("zdmigrate")]


def _command_path(args: list[str]) -> tuple[list[str], click.Command]:
    """The subcommand names at the start of `args`, and the command they name."""
    command: click.Command = cli.cli
    path: list[str] = []
    for arg in args:
        if not isinstance(command, click.Group) or arg not in command.commands:
            break
        command = command.commands[arg]
        path.append(arg)
    return path, command


def test_the_tutorial_uses_the_commands_of_a_rename_in_three_deploys() -> None:
    used = {" ".join(_command_path(args)[0]) for args in _zdmigrate_lines()}
    assert {"init", "new", "lint", "plan", "phase advance", "status", "gate", "fleet declare",
            "fleet retire", "fleet"} <= used


@pytest.mark.parametrize("args", _zdmigrate_lines(), ids=lambda a: " ".join(a))
def test_each_tutorial_command_exists_with_its_options(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = _command_path(args)
    assert cli.run([*path, "--help"]) == 0
    help_text = capsys.readouterr().out
    for option in (a.split("=")[0] for a in args if a.startswith("--")):
        assert option in help_text, f"`zdmigrate {' '.join(path)}` has no option {option}"


def test_the_tutorial_migrations_load_and_lint_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZDMIGRATE_DATABASE_URL", raising=False)
    folder = tmp_path / "migrations"
    folder.mkdir()
    for source in _blocks("python"):
        revision = re.search(r'^revision = "(\w+)"', source, re.M)
        assert revision is not None
        (folder / f"{revision.group(1)}.py").write_text(source)
    assert [m.id for m in load_migrations(folder)] == ["0001_create_users",
                                                         "0002_rename_users_name"]
    assert cli.run(["lint", "--migrations", str(folder)]) == 0, capsys.readouterr()
    assert cli.run(["plan", "0002_rename_users_name", "--migrations", str(folder)]) == 0
    plan = capsys.readouterr().out
    assert 'ALTER TABLE "public"."users" DROP COLUMN "name";' in plan


def test_the_readme_links_the_tutorial() -> None:
    assert "(docs/tutorial.md)" in (ROOT / "README.md").read_text()
