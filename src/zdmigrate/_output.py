"""Printing for the CLI: text (rich on a terminal), JSON, and progress/log lines.

Results go to stdout; progress and log lines go to stderr, so `--format json`
output stays machine-readable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from zdmigrate.errors import Blocker, CheckFailed, OperationInvalid, ZdmigrateError

if TYPE_CHECKING:
    from zdmigrate.engine import MigrationStatus, PhasePlan, Transition


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def log_line(message: str) -> None:
    """A progress line on stderr (plain text: safe for CI logs)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def error(exc: ZdmigrateError, output_format: str) -> None:
    if output_format == "json":
        payload: dict[str, Any] = {
            "error": {
                "type": type(exc).__name__, "message": exc.message, "exit_code": exc.exit_code,
            }
        }
        if isinstance(exc, CheckFailed):
            payload["error"]["blockers"] = [b.as_dict() for b in exc.blockers]
        if isinstance(exc, OperationInvalid):
            payload["error"]["problems"] = exc.problems
        if exc.hint:
            payload["error"]["hint"] = exc.hint
        emit_json(payload)
        return
    sys.stderr.write(f"error: {exc}\n")


def status_text(statuses: Sequence[MigrationStatus]) -> None:
    from rich.console import Console
    from rich.table import Table

    if not statuses:
        print("no migrations")
        return
    table = Table(show_lines=False, header_style="bold")
    for column in ("migration", "phase", "next", "blocked by", "backfill"):
        table.add_column(column)
    for s in statuses:
        blocked = "\n".join(_blocker_text(b) for b in s.blocked_by) or "-"
        if s.partial:
            blocked = "\n".join(
                [f"interrupted: {p['direction']} of {p['phase']} ({p['steps_done']} step(s) done)"
                 for p in s.partial] + ([] if blocked == "-" else [blocked])
            )
        progress = "\n".join(_backfill_text(b) for b in s.backfills) or "-"
        if s.shadow_reads:
            shadow = (f"shadow reads: {s.shadow_reads['compared']} compared, "
                      f"{s.shadow_reads['mismatched']} mismatched")
            progress = shadow if progress == "-" else f"{progress}\n{shadow}"
        table.add_row(s.id, s.phase.value, s.next.value if s.next else "(complete)", blocked,
                      progress)
    Console(width=160 if not sys.stdout.isatty() else None).print(table)


def _backfill_text(progress: dict[str, Any]) -> str:
    done, total = progress["rows_done"], progress.get("rows_total")
    share = ""
    if total and progress["status"] != "done":
        share = f" (~{min(99.9, 100 * done / total):.1f}% of ~{total:,})"
    return f"{progress['table_name']}: {done:,} rows{share}, {progress['status']}"


def _blocker_text(blocker: Blocker) -> str:
    return f"[{blocker.check}] {blocker.message}"


def plan_text(plans: Sequence[PhasePlan]) -> None:
    current = None
    for p in plans:
        if p.migration.id != current:
            current = p.migration.id
            print(f"== {p.migration.id}  ({p.migration.path.name}, {p.migration.kind})")
        if not p.steps:
            print(f"-- {p.phase}: nothing to run")
            continue
        print(f"-- {p.phase}:")
        for step in p.steps:
            where = f"  -- {step.source.path.rsplit('/', 1)[-1]}:{step.source.line}" if step.source else ""
            print(f"{step.render()};{where}")
        if p.rollback:
            print(f"-- rollback of {p.phase}:")
            for step in p.rollback:
                print(f"{step.render()};")
    print()


def plan_json(plans: Sequence[PhasePlan]) -> None:
    out: dict[str, dict[str, Any]] = {}
    for p in plans:
        entry = out.setdefault(p.migration.id, {"id": p.migration.id, "kind": p.migration.kind,
                                                "path": str(p.migration.path), "phases": []})
        entry["phases"].append({
            "phase": p.phase.value,
            "steps": [_step_dict(s) for s in p.steps],
            "rollback": [_step_dict(s) for s in p.rollback],
        })
    emit_json({"migrations": list(out.values())})


def _step_dict(step: Any) -> dict[str, Any]:
    return {
        "sql": step.render(),
        "kind": type(step).__name__,
        "autocommit": getattr(step, "autocommit", False),
        "source": str(step.source) if step.source else None,
    }


def transitions_text(transitions: Sequence[Transition]) -> None:
    for t in transitions:
        if t.dry_run:
            print(f"{t.migration_id}: would {t.action} {t.from_phase} -> {t.to_phase}")
            for step in t.steps:
                print(f"    {step.render()};")
        else:
            print(f"{t.migration_id}: {t.from_phase} -> {t.to_phase} "
                  f"({t.steps_run} step(s) run, {t.steps_skipped} already done)")
