"""docs/deployments.md: its YAML parses, and every zdmigrate command in it is a real command
with real options (the runbooks themselves are replayed by tests/test_strategies.py)."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from tests.helpers import ROOT
from zdmigrate.cli import run

DOC = (ROOT / "docs" / "deployments.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.S)


def _invocations() -> list[list[str]]:
    """Every `zdmigrate ...` in the code blocks, and the Argo analysis `command` values."""
    found = []
    shell = [(b, r"[^#&\n]") for b in _blocks("bash") + _blocks("console")]
    for block, allowed in [*shell, *[(b, r"[^#&\"\n]") for b in _blocks("yaml")]]:
        for line in block.splitlines():
            line = line.removeprefix("$ ")
            for match in re.finditer(rf"\bzdmigrate ([a-z]{allowed}*)", line):
                if "{{" not in match.group(1):
                    found.append(shlex.split(match.group(1)))
            for match in re.finditer(r'value: "((?:gate|phase|fleet) [^"]*)"', line):
                found.append(shlex.split(match.group(1)))
    return found


def test_the_yaml_parses() -> None:
    blocks = _blocks("yaml")
    assert len(blocks) >= 3
    for block in blocks:
        assert [doc for doc in yaml.safe_load_all(block) if doc is not None]


def test_there_is_a_runbook_per_strategy_and_the_index_links_it() -> None:
    for heading in ("## Rolling update", "## Canary", "## Blue-green",
                    "## How instances report their version"):
        assert heading in DOC
    for command in ("zdmigrate gate", "zdmigrate fleet declare", "zdmigrate phase advance",
                    "zdmigrate fleet retire", "application_name"):
        assert command in DOC
    assert "(deployments.md)" in (ROOT / "docs" / "index.md").read_text()


@pytest.mark.parametrize("args", _invocations(), ids=" ".join)
def test_every_command_exists_with_its_options(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # --help comes last: click rejects an unknown command or option before reaching it
    assert run([*args, "--help"]) == 0, capsys.readouterr().err
