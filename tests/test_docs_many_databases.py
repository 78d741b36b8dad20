"""docs/many-databases.md (backfill, fleet and gate across targets, the Kubernetes Job,
Citus): the Job manifest parses and runs a real command, its failure policy matches the
exit codes, and every zdmigrate command line in those sections is one the CLI takes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from zdmigrate.cli import cli
from zdmigrate.errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_OPERATIONAL

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "many-databases.md").read_text()
MINE = DOC[DOC.index("## Backfill across targets"):]


def section(title: str) -> str:
    start = DOC.index(f"## {title}")
    end = DOC.find("\n## ", start + 1)
    return DOC[start:end if end != -1 else len(DOC)]


def parses(argv: list[str]) -> click.Command:
    """The command `argv` names, after its options parsed as the CLI parses them."""
    command: click.Command = cli
    words = list(argv)
    while isinstance(command, click.Group) and words and words[0] in command.commands:
        command = command.commands[words.pop(0)]
    command.make_context("zdmigrate", words, resilient_parsing=False)
    return command


def test_the_job_manifest_runs_a_real_command_and_retries_only_what_a_retry_can_fix() -> None:
    [block] = re.findall(r"```yaml\n(.*?)```", section("Running from a Kubernetes Job"), re.S)
    job = yaml.safe_load(block)
    assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1"
    spec = job["spec"]
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # the pod failure policy needs it
    [container] = pod["containers"]
    assert container["command"] == ["zdmigrate"]
    command = parses(container["args"])
    assert command.name == "advance"
    assert "--parallel" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"
    assert "value" not in env["PGPASSWORD"]  # from the Secret, never written in the manifest
    assert env["ZDMIGRATE_TARGETS_FILE"]["value"].startswith(
        pod["containers"][0]["volumeMounts"][0]["mountPath"])
    # 1 (refused) and 2 (bad input) fail the Job at once; 3 (a target failed) is retried
    [rule] = spec["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob"
    assert rule["onExitCodes"]["containerName"] == container["name"]
    assert set(rule["onExitCodes"]["values"]) == {EXIT_CHECK_FAILED, EXIT_BAD_INPUT}
    assert EXIT_OPERATIONAL not in rule["onExitCodes"]["values"]
    assert spec["backoffLimit"] >= 1


def command_lines(text: str) -> list[list[str]]:
    """Every `zdmigrate ...` command written in the text: console lines and inline code."""
    found = [line[2:] for line in text.splitlines() if line.startswith("$ zdmigrate ")]
    found += re.findall(r"`(zdmigrate [a-z][^`]*)`", text)
    out = []
    for line in found:
        words = shlex.split(line.replace("\\\n", " "))[1:]
        placeholders = {"A": "shop", "V": "2.0"}
        out.append([placeholders.get(w, w) for w in words if "..." not in w])
    return out


@pytest.mark.parametrize("title", ["Backfill across targets", "Fleet and gate across targets",
                                   "Running from a Kubernetes Job", "Citus"])
def test_every_command_in_the_section_is_one_the_cli_takes(title: str) -> None:
    lines = command_lines(section(title))
    for argv in lines:
        needs_app = argv[:1] == ["gate"] or argv[:2] in (
            ["fleet", "declare"], ["fleet", "retire"], ["fleet", "heartbeat"])
        if needs_app and "--app" not in argv:  # written as a mention, without its values
            argv = [*argv, "--app", "shop", "--version", "2.0"]
        parses(argv)
    if title != "Citus":
        assert lines, f"no zdmigrate command in {title}"


def test_the_sections_are_linked_from_fleet_ci_gate_and_cli() -> None:
    for doc in ("fleet.md", "ci-gate.md", "cli.md"):
        text = (ROOT / "docs" / doc).read_text()
        assert "many-databases.md#fleet-and-gate-across-targets" in text, doc
    assert "many-databases.md#backfill-across-targets" in (ROOT / "docs" / "cli.md").read_text()
    assert "never list the workers as targets" in MINE.lower()
    assert "citus.enable_unsafe_triggers" in MINE
