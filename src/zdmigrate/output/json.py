"""Every command's result as JSON on stdout (progress and logs stay on stderr)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zdmigrate.errors import (
    CheckFailed,
    OperationInvalid,
    PhaseRefused,
    TargetsFailed,
    ZdmigrateError,
)

if TYPE_CHECKING:
    from zdmigrate import engine
    from zdmigrate.fleet import Instance
    from zdmigrate.gate import GateAnswer
    from zdmigrate.targets import Target


def emit(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def error(exc: ZdmigrateError) -> None:
    payload: dict[str, Any] = {
        "error": {
            "type": type(exc).__name__, "message": exc.message, "exit_code": exc.exit_code,
        }
    }
    if isinstance(exc, CheckFailed):
        payload["error"]["blockers"] = [b.as_dict() for b in exc.blockers]
    if isinstance(exc, OperationInvalid):
        payload["error"]["problems"] = exc.problems
    if isinstance(exc, TargetsFailed):  # which targets failed, and why each
        payload["error"]["targets"] = {
            name: {"type": type(e).__name__, "message": e.message, "exit_code": e.exit_code,
                   **({"blockers": [b.as_dict() for b in e.blockers]}
                      if isinstance(e, CheckFailed) else {})}
            for name, e in sorted(exc.failures.items())
        }
    if isinstance(exc, TargetsFailed) and hasattr(exc.done, "as_dict"):
        payload["result"] = exc.done.as_dict()  # what the other targets did
    if exc.hint:
        payload["error"]["hint"] = exc.hint
    if isinstance(exc, PhaseRefused):  # what moved before the refusal: a pipeline must know
        payload["transitions"] = [t.as_dict() for t in exc.done]
    emit(payload)


def init(result: engine.InitResult) -> None:
    emit({"migrations": str(result.migrations), "created_directory": result.created_directory,
          "schema": result.schema, "schema_version": result.schema_version,
          "alembic_project": result.alembic_project,
          "found_by_alembic_config": result.found_by_alembic_config,
          "adopt_revision": result.adopt_revision})


def new(path: Path) -> None:
    emit({"path": str(path)})


def status(statuses: Sequence[engine.MigrationStatus]) -> None:
    emit({"migrations": [s.as_dict() for s in statuses]})


def plan(plans: Sequence[engine.PhasePlan]) -> None:
    out: dict[str, dict[str, Any]] = {}
    for p in plans:
        entry = out.setdefault(p.migration.id, {"id": p.migration.id, "kind": p.migration.kind,
                                                "path": str(p.migration.path),
                                                "message": p.migration.message, "phases": []})
        entry["phases"].append({
            "phase": p.phase.value,
            "steps": [_step_dict(s) for s in p.steps],
            "rollback": [_step_dict(s) for s in p.rollback],
        })
    emit({"migrations": list(out.values())})


def _step_dict(step: Any) -> dict[str, Any]:
    return {
        "sql": step.render(),
        "kind": type(step).__name__,
        "autocommit": getattr(step, "autocommit", False),
        "source": str(step.source) if step.source else None,
    }


def adopt(adopted: Sequence[str]) -> None:
    emit({"adopted": list(adopted)})


def transitions(transitions: Sequence[engine.Transition]) -> None:
    emit({"transitions": [t.as_dict() for t in transitions]})


def status_across(report: engine.AcrossStatus) -> None:
    emit(report.as_dict())


def across(run: engine.AcrossRun) -> None:
    emit(run.as_dict())


def backfill(run: engine.BackfillRun) -> None:
    if run.action != "run":  # pause or resume: one answer
        emit(run.as_dict())
        return
    # JSON lines: the progress records went before, then this summary
    print(json.dumps({"event": "result", **run.as_dict()}, default=str), flush=True)


def backfill_across(result: engine.BackfillAcross) -> None:
    # JSON lines: every target's progress records and the totals went before, then this
    print(json.dumps({"event": "result", **result.as_dict()}, default=str), flush=True)


def fleet(instances: Sequence[Instance]) -> None:
    emit({"instances": [i.as_dict() for i in instances]})


def heartbeat(result: Instance | bool) -> None:
    if isinstance(result, bool):
        emit({"stopped": result})
    else:
        emit({"instance": result.as_dict()})


def retire(removed: int) -> None:
    emit({"removed": removed})


def gate(answer: GateAnswer) -> str:
    return json.dumps(answer.as_dict(), indent=2, default=str)


def targets(found: Sequence[Target]) -> None:
    emit({"targets": [{"name": t.name, "url": t.shown, "source": t.source} for t in found]})
