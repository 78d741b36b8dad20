"""Every CLI command is documented in docs/cli.md, and the README has its two commands."""

from __future__ import annotations

import re

import click

from tests.helpers import ROOT
from zdmigrate.cli import cli


def _command_paths(group: click.Group, prefix: str = "") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                paths.append(path)
            paths.extend(_command_paths(command, path + " "))
        else:
            paths.append(path)
    return paths


def test_every_command_has_a_section_in_docs_cli() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    headings = re.findall(r"^### `zdmigrate ([a-z -]+?)(?: [A-Z\[-].*)?`$", text, re.M)
    documented = {h.strip() for h in headings}
    missing = sorted(set(_command_paths(cli)) - documented)
    assert missing == [], f"commands without a section in docs/cli.md: {missing}"


def test_readme_has_the_demo_and_the_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "zdmigrate demo" in readme
    assert re.search(r"pip install -e '\.\[test\]' && pytest", readme)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pytest" in ci and "ZDMIGRATE_TEST_DATABASE_URL" in ci


def test_every_doc_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    docs = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    missing = [name for name in docs if f"(docs/{name})" not in readme]
    assert missing == [], f"docs not linked from README.md: {missing}"
