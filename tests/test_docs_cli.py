"""Every CLI command is documented in docs/cli.md, and the README has its two commands."""

from __future__ import annotations

import re
from pathlib import Path

import click

from tests.helpers import ROOT
from zdmigrate.cli import cli
from zdmigrate.lint import lint_migration
from zdmigrate.migration import load_migrations
from zdmigrate.phases import Phase


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


def test_the_first_migration_in_docs_index_loads_and_plans(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "index.md").read_text()
    match = re.search(r"```python\n# migrations/(0002_\w+)\.py\n(.*?)```", text, re.S)
    assert match is not None
    (tmp_path / "0001_create_users.py").write_text(
        'revision = "0001_create_users"\ndown_revision = None\n\ndef upgrade():\n    pass\n')
    (tmp_path / f"{match.group(1)}.py").write_text(match.group(2))
    migration = load_migrations(tmp_path)[1]
    assert migration.compat["shop"].old_unused_from is not None  # contract can be proven
    assert [s.sql for s in migration.render(Phase.CONTRACT)] == [  # type: ignore[union-attr]
        "ALTER TABLE users DROP COLUMN name"]
    assert not lint_migration(migration)
