"""Renderers of every command's result: text, json, github (gate); lint has output/lint/.

Commands return data; only this package (and the CLI calling it) draws text.

    output.status(engine.status(settings), "json")
    print(output.render_gate(gate.run_gate(settings, app="shop", version="2.0"), "github"))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from zdmigrate._lazy import lazy_module
from zdmigrate.errors import ZdmigrateError

if TYPE_CHECKING:
    from zdmigrate import engine
    from zdmigrate.fleet import Instance
    from zdmigrate.gate import GateAnswer
    from zdmigrate.output import github, json, text
    from zdmigrate.targets import Target
else:  # on first use: `zdmigrate lint` reaches output/lint/ through this package without them
    github, json, text = (lazy_module(f"zdmigrate.output.{name}")
                          for name in ("github", "json", "text"))

#: Formats of every command; `gate` adds github, `lint` github and sarif (output/lint/).
FORMATS = ("text", "json")
GATE_FORMATS = ("text", "json", "github")


def emit_json(payload: Any) -> None:
    """`payload` as indented JSON on stdout."""
    json.emit(payload)


def log_line(message: str) -> None:
    """A progress line on stderr (plain text: safe for CI logs)."""
    text.log_line(message)


def _renderer(output_format: str) -> ModuleType:
    return json if output_format == "json" else text


def error(exc: ZdmigrateError, output_format: str) -> None:
    """A user-facing error: JSON on stdout with --format json, else one line on stderr."""
    _renderer(output_format).error(exc)


def init(result: engine.InitResult, output_format: str) -> None:
    _renderer(output_format).init(result)


def new(path: Path, output_format: str) -> None:
    _renderer(output_format).new(path)


def status(statuses: Sequence[engine.MigrationStatus], output_format: str, *, wide: bool = False) -> None:
    if output_format == "json":
        json.status(statuses)
    else:
        text.status(statuses, wide=wide)


def plan(plans: Sequence[engine.PhasePlan], output_format: str) -> None:
    _renderer(output_format).plan(plans)


def adopt(adopted: Sequence[str], output_format: str) -> None:
    _renderer(output_format).adopt(adopted)


def transitions(done: Sequence[engine.Transition], output_format: str) -> None:
    _renderer(output_format).transitions(done)


def status_across(report: engine.AcrossStatus, output_format: str, *, detail: bool = False,
                  wide: bool = False) -> None:
    """`status` across targets: per migration (or, with `detail`, per target)."""
    if output_format == "json":
        json.status_across(report)
    else:
        text.status_across(report, detail=detail, wide=wide)


def across(run: engine.AcrossRun, output_format: str) -> None:
    """What a phase command across targets did on each target."""
    _renderer(output_format).across(run)


def backfill(run: engine.BackfillRun, output_format: str) -> None:
    _renderer(output_format).backfill(run)


def backfill_across(result: engine.BackfillAcross, output_format: str) -> None:
    _renderer(output_format).backfill_across(result)


def fleet(instances: Sequence[Instance], output_format: str) -> None:
    _renderer(output_format).fleet(instances)


def heartbeat(result: Instance | bool, output_format: str) -> None:
    _renderer(output_format).heartbeat(result)


def declared(instances: Sequence[Instance], output_format: str, *, app: str, version: str) -> None:
    if output_format == "json":
        json.fleet(instances)
    else:
        text.declared(instances, app, version)


def retire(removed: int, output_format: str, *, app: str, version: str) -> None:
    if output_format == "json":
        json.retire(removed)
    else:
        text.retire(removed, app, version)


def targets(found: Sequence[Target], output_format: str) -> None:
    _renderer(output_format).targets(found)


def render_gate(answer: GateAnswer, output_format: str = "text") -> str:
    """The gate's answer in `output_format` (text, json or github)."""
    if output_format == "json":
        return json.gate(answer)
    if output_format == "github":
        return github.gate(answer)
    return text.gate(answer)


__all__ = [
    "FORMATS", "GATE_FORMATS", "across", "adopt", "backfill", "declared", "emit_json", "error", "fleet",
    "heartbeat", "init", "log_line", "new", "plan", "render_gate", "retire", "status", "status_across",
    "targets", "transitions",
]
