"""Every command's result as text for people (rich tables on a terminal), and log lines.

Results go to stdout; progress and log lines go to stderr, so `--format json`
output stays machine-readable.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zdmigrate.errors import Blocker, ZdmigrateError

if TYPE_CHECKING:
    from zdmigrate.engine import BackfillRun, InitResult, MigrationStatus, PhasePlan, Transition
    from zdmigrate.fleet import Instance
    from zdmigrate.gate import GateAnswer


def log_line(message: str) -> None:
    """A progress line on stderr (plain text: safe for CI logs)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def error(exc: ZdmigrateError) -> None:
    sys.stderr.write(f"error: {exc}\n")


def init(result: InitResult) -> None:
    print(("created " if result.created_directory else "found ") + str(result.migrations))
    if result.schema:
        print(f"state schema {result.schema} is at version {result.schema_version}")
    else:
        print("no database URL given: the state schema will be created on first use")


def new(path: Path) -> None:
    print(f"created {path}")


def status(statuses: Sequence[MigrationStatus]) -> None:
    from rich.console import Console
    from rich.markup import escape
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
        name = f"{s.id}\n[dim]{escape(s.message)}[/dim]" if s.message and s.message not in s.id \
            else s.id
        table.add_row(name, s.phase.value, s.next.value if s.next else "(complete)",
                      escape(blocked), escape(progress))
    Console(width=160 if not sys.stdout.isatty() else None).print(table)
    _search_paths(statuses)


def _search_paths(statuses: Sequence[MigrationStatus]) -> None:
    """Renames through views in flight: the search_path each live app version must use."""
    in_flight = [s for s in statuses if s.version_schema]
    if not in_flight:
        return
    print("search_path of the live app versions that use new names (version schemas first):")
    seen: dict[tuple[str, str], str] = {}
    for s in in_flight:
        assert s.version_schema is not None
        for entry in s.version_schema["live"]:
            seen[(entry["app"], entry["version"])] = entry["dsn_option"]
    for (app, version), option in sorted(seen.items()):
        print(f"  {app} {version}: options={option}")
    for s in in_flight:
        assert s.version_schema is not None
        needs = ", ".join(f"{app} >= {v}" for app, v in sorted(s.version_schema["read_new_from"].items()))
        print(f"  {s.id}: version schema {s.version_schema['schema']}, for {needs or 'no app (no compat)'}")


def _backfill_text(progress: dict[str, Any]) -> str:
    done, total = progress["rows_done"], progress.get("rows_total")
    share = ""
    if total and progress["status"] != "done":
        share = f" (~{min(99.9, 100 * done / total):.1f}% of ~{total:,})"
    line = f"{progress['table_name']}: {done:,} rows{share}, {progress['status']}"
    info = progress.get("info") or {}
    if info.get("workers_reason"):
        line += f"\n  {info['workers_reason']}"
    before, after = info.get("table_bytes_before"), info.get("table_bytes_after")
    if before:
        size = f"table {_mib(before)}"
        if after:
            size += f" -> {_mib(after)} ({after / before:.2f}x)"
        line += f"\n  {size}"
    return line


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def _blocker_text(blocker: Blocker) -> str:
    return f"[{blocker.check}] {blocker.message}"


def plan(plans: Sequence[PhasePlan]) -> None:
    current = None
    for p in plans:
        if p.migration.id != current:
            current = p.migration.id
            print(f"== {p.migration.id}  ({p.migration.path.name}, {p.migration.kind})")
            if p.migration.message:
                print(f"-- {p.migration.message}")
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


def adopt(adopted: Sequence[str]) -> None:
    print(f"adopted {len(adopted)} migration(s) as complete" if adopted else "nothing to adopt")


def transitions(transitions: Sequence[Transition]) -> None:
    if not transitions:
        print("nothing to do")
    for t in transitions:
        if t.dry_run:
            print(f"{t.migration_id}: would {t.action} {t.from_phase} -> {t.to_phase}")
            for step in t.steps:
                print(f"    {step.render()};")
        else:
            print(f"{t.migration_id}: {t.from_phase} -> {t.to_phase} "
                  f"({t.steps_run} step(s) run, {t.steps_skipped} already done)")


def backfill(run: BackfillRun) -> None:
    if run.action != "run":
        state = "paused" if run.action == "pause" else "resumed"
        print(f"{run.migration_id}: {state} {run.changed} backfill(s)")
        return
    for result in run.results:
        checked = ", verified: every row agrees" if result.verification else ""
        print(f"{run.migration_id} {result.table}: {result.status}, "
              f"{result.rows_done:,} rows covered, {result.rows_updated:,} updated{checked}")
        if result.workers_reason:
            print(f"  {result.workers_reason}")
        if result.table_bytes_before and result.table_bytes_after:
            print(f"  table {_mib(result.table_bytes_before)} -> "
                  f"{_mib(result.table_bytes_after)} "
                  f"({result.table_bytes_after / result.table_bytes_before:.2f}x), "
                  f"{result.vacuums} VACUUM round(s)")


def heartbeat(result: Instance | bool) -> None:
    if isinstance(result, bool):
        print("heartbeat removed" if result else "no heartbeat to remove")
    else:
        print(f"heartbeat: {result.describe()}")


def declared(declared: Sequence[Instance], app: str, version: str) -> None:
    print(f"declared {len(declared)} instance(s) of {app} {version}, "
          f"live until {declared[0].expires_at:%Y-%m-%d %H:%M:%S%z} unless declared again")


def retire(removed: int, app: str, version: str) -> None:
    print(f"retired {app} {version}: {removed} row(s) removed"
          + ("" if removed else " (nothing was declared for it)"))


def gate(answer: GateAnswer) -> str:
    head = f"gate: {answer.app} {answer.version} "
    if answer.allowed:
        lines = [head + "may go out"]
    else:
        n = len(answer.blockers)
        lines = [head + f"may NOT go out ({n} reason{'s' if n != 1 else ''})"]
        lines += [f"  - [{b.check}] {b.message}" for b in answer.blockers]
    if answer.warnings:
        lines.append("warnings:")
        lines += [f"  - [{w.check}] {w.message}" for w in answer.warnings]
    if answer.not_checked:
        lines.append("not checked:")
        lines += [f"  - {n}" for n in answer.not_checked]
    if answer.checked:
        lines.append("checked:")
        lines += [f"  - {c}" for c in answer.checked]
    return "\n".join(lines)


def fleet(instances: Sequence[Instance]) -> None:
    from zdmigrate.fleet import render_table  # psycopg: only when there is a fleet to show

    print(render_table(instances))
