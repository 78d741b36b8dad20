"""docs/ci-gate.md and docs/fleet.md: the runbook replays against a real database; the CI
files parse and their zdmigrate commands are real commands."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from tests.fix_cli import Cli

ROOT = Path(__file__).resolve().parents[1]
CI_GATE = (ROOT / "docs" / "ci-gate.md").read_text()
FLEET = (ROOT / "docs" / "fleet.md").read_text()


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def commands(block: str) -> list[tuple[list[str], int]]:
    """`$ zdmigrate ...` lines of a console block, with the exit code their comment expects."""
    out = []
    for line in block.splitlines():
        if not line.startswith("$ zdmigrate "):
            continue
        command, _, comment = line[2:].partition("#")
        expected = re.search(r"exits (\d)", comment)
        out.append((shlex.split(command)[1:], int(expected.group(1)) if expected else 0))
    return out


@pytest.fixture
def example(cli: Cli) -> Cli:
    cli.migrations.mkdir()
    for name in ("0001_create_users.py", "0002_rename_users_name.py"):
        shutil.copy(ROOT / "migrations_example" / name, cli.migrations / name)
    return cli


def test_the_rename_runbook_runs_as_written(example: Cli) -> None:
    [runbook] = [b for b in blocks(CI_GATE, "console") if "# 0. today" in b]
    steps = commands(runbook)
    assert len(steps) >= 15
    for args, expected in steps:
        code, out, err = example(*args)
        assert code == expected, (args, out, err)


def test_github_workflow_parses_and_gates_the_deploy() -> None:
    [workflow] = [yaml.safe_load(b) for b in blocks(CI_GATE, "yaml") if "runs-on" in b]
    jobs = workflow["jobs"]
    assert set(jobs) == {"lint", "deploy"}
    runs = [s.get("run", "") for s in jobs["deploy"]["steps"]]
    gate_at = next(i for i, r in enumerate(runs) if r.startswith("zdmigrate gate"))
    deploy_at = next(i for i, r in enumerate(runs) if r.startswith("./deploy.sh"))
    assert gate_at < deploy_at
    assert any(s.get("run", "").startswith("zdmigrate lint") for s in jobs["lint"]["steps"])
    assert workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as True


def test_gitlab_jobs_parse_and_deploy_needs_the_gate() -> None:
    [pipeline] = [yaml.safe_load(b) for b in blocks(CI_GATE, "yaml") if "stages" in b]
    assert pipeline["stages"] == ["lint", "gate", "deploy"]
    assert pipeline["deploy"]["needs"] == ["gate"]
    assert any("zdmigrate gate" in s for s in pipeline["gate"]["script"])
    assert any("zdmigrate lint" in s for s in pipeline["lint-migrations"]["script"])


@pytest.mark.parametrize("doc", ["ci-gate", "fleet"])
def test_every_zdmigrate_command_in_the_docs_is_a_real_command(
    doc: str, example: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    from zdmigrate.cli import cli

    text = CI_GATE if doc == "ci-gate" else FLEET
    # in backticks, after a `$ ` prompt, or as a CI script line
    lines = re.findall(r"(?:`|\$ |run: |- )zdmigrate ([a-z][a-z -]*)", text)
    assert lines
    seen = set()
    for line in lines:
        words = line.split()
        group = cli
        path = []
        for word in words:
            if not hasattr(group, "commands") or word not in group.commands:
                break
            group = group.commands[word]
            path.append(word)
        seen.add(" ".join(path))
        assert path, f"`zdmigrate {line}` in docs/{doc}.md is not a command"
    assert "gate" in seen or doc == "fleet"
