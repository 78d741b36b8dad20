"""Every command's result as text for people (rich tables on a terminal), and log lines.

Results go to stdout; progress and log lines go to stderr, so `--format json`
output stays machine-readable.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zdmigrate.errors import Blocker, PhaseRefused, TargetsFailed, ZdmigrateError
from zdmigrate.steps import comment_text

if TYPE_CHECKING:
    from zdmigrate import engine
    from zdmigrate.fleet import Instance
    from zdmigrate.gate import GateAnswer
    from zdmigrate.targets import Target


def log_line(message: str) -> None:
    """A progress line on stderr (plain text: safe for CI logs)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def error(exc: ZdmigrateError) -> None:
    if isinstance(exc, PhaseRefused) and exc.done:  # what moved before the refusal, first
        transitions(exc.done)
        sys.stdout.flush()
    if isinstance(exc, TargetsFailed) and exc.done is not None:  # what the others did, first
        from zdmigrate.engine import BackfillAcross

        if isinstance(exc.done, BackfillAcross):
            backfill_across(exc.done)
            sys.stdout.flush()
    sys.stderr.write(f"error: {exc}\n")


def init(result: engine.InitResult) -> None:
    print(("created " if result.created_directory else "found ") + str(result.migrations))
    if result.alembic_project:
        print("an Alembic project: its revisions are zdmigrate's migrations too, and "
              "`alembic upgrade head` keeps working (docs/adopting.md)")
    if result.found_by_alembic_config:
        print(f'found through the Alembic config: set migrations = "{result.migrations}" '
              "in [tool.zdmigrate] (or ZDMIGRATE_MIGRATIONS) for the other commands")
    if result.adopt_revision:
        print(f"this database is at Alembic revision {result.adopt_revision}, not adopted yet: "
              "run `zdmigrate adopt`")
    if result.schema:
        print(f"state schema {result.schema} is at version {result.schema_version}")
    else:
        print("no database URL given: the state schema will be created on first use")


def new(path: Path) -> None:
    print(f"created {path}")


def status(statuses: Sequence[engine.MigrationStatus], *, wide: bool = False) -> None:
    """A table of phases and backfills, then what blocks each migration, below it.

    Fits the terminal (80 columns when not a terminal): ids and phases are never cut,
    blockers of many instances of one app version are one line with a count, and a
    command to copy stands on its own line, never wrapped. `wide` prints every
    blocker of every instance, lines as long as they need.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    if not statuses:
        print("no migrations")
        return
    console = Console(width=100_000 if wide else None, soft_wrap=wide)
    width = 100_000 if wide else console.width
    table = Table(show_lines=False, header_style="bold")
    table.add_column("migration", no_wrap=True, min_width=max(len(s.id) for s in statuses))
    table.add_column("phase", no_wrap=True)
    table.add_column("next", no_wrap=True)
    table.add_column("blocked", no_wrap=True, justify="right")
    table.add_column("backfill")
    for s in statuses:
        progress = "\n".join(_backfill_text(b) for b in s.backfills) or "-"
        name = f"{s.id}\n[dim]{escape(s.message)}[/dim]" if s.message and s.message not in s.id \
            else s.id
        blocked = len(_blocker_groups(s.blocked_by, wide)) + len(s.partial)
        table.add_row(name, s.phase.value, s.next.value if s.next else "(complete)",
                      str(blocked) if blocked else "-", escape(progress))
    console.print(table)
    _search_paths(statuses)
    for s in statuses:
        lines = [f"interrupted: {p['direction']} of {p['phase']} ({p['steps_done']} step(s) "
                 "done); rerun the phase command to finish it, or roll it back"
                 for p in s.partial]
        lines += [
            f"backfill of {b['table_name']} is interrupted: marked running, but no worker is "
            f"connected; this resumes it: `zdmigrate backfill {s.id}`"
            for b in s.backfills if b["status"] == "interrupted"
        ]
        if s.shadow_reads:
            lines.append(f"shadow reads: {_n(s.shadow_reads['compared'])} compared, "
                         f"{_n(s.shadow_reads['mismatched'])} mismatched")
        lines += [_group_text(group) for group in _blocker_groups(s.blocked_by, wide)]
        if not lines:
            continue
        print()
        print(f"{s.id} ({s.phase.value} -> {s.next.value if s.next else 'complete'}):")
        for line in lines:
            for out in _with_commands_apart(line, width):
                print(out)


def _blocker_groups(blockers: Sequence[Blocker], wide: bool) -> list[list[Blocker]]:
    """Blockers of instances of one app version with one check and one remedy, together."""
    if wide:
        return [[b] for b in blockers]
    groups: dict[tuple[str, ...], list[Blocker]] = {}
    for i, b in enumerate(blockers):
        d = b.details
        key = ((b.check, str(d.get("app")), str(d.get("version")), str(d.get("required")),
                str(d.get("source"))) if "instance_id" in d and "unblock" in d
               else (str(i),))
        groups.setdefault(key, []).append(b)
    return list(groups.values())


def _group_text(group: list[Blocker]) -> str:
    first = group[0]
    if len(group) == 1:
        return _blocker_text(first)
    # the remedy of the instance that counts longest (its TTL runs out last)
    last = max(group, key=lambda b: str(b.details.get("expires_at", "")))
    d = last.details
    ids = [str(b.details.get("instance_id")) for b in group]
    shown = ", ".join(ids[:3]) + (f" and {_n(len(ids) - 3)} more" if len(ids) > 3 else "")
    unblock = str(d.get("unblock")).replace("that instance", "those instances")
    return (f"[{first.check}] {d.get('app')} {d.get('version')}: {_n(len(group))} live "
            f"instances ({d.get('source')}: {shown}) below {d.get('required')}; {unblock}")


def _with_commands_apart(text: str, width: int) -> list[str]:
    """`text` wrapped to `width` with each `zdmigrate ...` command on a line of its own."""
    import re

    commands = re.findall(r"`(zdmigrate [^`]+)`", text)
    prose = re.sub(r"`(zdmigrate [^`]+)`", "(below)" if len(commands) == 1 else "(see below)",
                   text)
    lines = textwrap.wrap(prose, width=max(40, width - 2), initial_indent="  - ",
                          subsequent_indent="    ", break_on_hyphens=False)
    return lines + [f"      {command}" for command in commands]


def _n(number: Any) -> str:
    """A count as text: thousands separated, everywhere the same."""
    return f"{number:,}" if isinstance(number, int) else str(number)


def _search_paths(statuses: Sequence[engine.MigrationStatus]) -> None:
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
    if total and progress["status"] not in ("done",):
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
    if info.get("wal_bytes") is not None:
        line += f"\n  {_wal_text(info)}"
    return line


def _wal_text(wal: dict[str, Any]) -> str:
    """``WAL 368.0 MiB, 1 checkpoint(s) (1 requested), WAL throttle held it 12.3s``"""
    timed, requested = wal.get("checkpoints_timed", 0), wal.get("checkpoints_requested", 0)
    text = (f"WAL {_mib(wal['wal_bytes'])}, {timed + requested} checkpoint(s) "
            f"({requested} requested)")
    if wal.get("wal_throttled_seconds"):
        text += f", WAL throttle held it {wal['wal_throttled_seconds']:.1f}s"
    return text


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def _blocker_text(blocker: Blocker) -> str:
    return f"[{blocker.check}] {blocker.message}"


def plan(plans: Sequence[engine.PhasePlan]) -> None:
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
            where = (
                f"  -- {comment_text(step.source.path.rsplit('/', 1)[-1])}:{step.source.line}"
                if step.source else ""
            )
            print(f"{step.render()};{where}")
        if p.rollback:
            print(f"-- rollback of {p.phase}:")
            for step in p.rollback:
                print(f"{step.render()};")
    print()


def adopt(adopted: Sequence[str]) -> None:
    print(f"adopted {len(adopted)} migration(s) as complete" if adopted else "nothing to adopt")


def transitions(transitions: Sequence[engine.Transition]) -> None:
    if not transitions:
        print("nothing to do")
    for t in transitions:
        if t.dry_run:
            print(f"{t.migration_id}: would {t.action} {t.from_phase} -> {t.to_phase}")
            for step in t.steps:
                print(textwrap.indent(f"{step.render()};", "    "))
        else:
            print(f"{t.migration_id}: {t.from_phase} -> {t.to_phase} "
                  f"({t.steps_run} step(s) run, {t.steps_skipped} already done)")


def across(run: engine.AcrossRun) -> None:
    """A line per target of a phase command across targets; failures also on stderr."""
    if run.migration_id is None or run.goal is None:
        print("nothing to do on any target")
        return
    verb = ("would " if run.dry_run else "") + run.action
    print(f"{run.migration_id}: {verb} to {run.goal} on {len(run.results)} target(s)"
          + (f" (canary {run.canary} first)" if run.canary else ""))
    width = max([len(r.target.name) for r in run.results] + [len(s.name) for s in run.skipped])
    for r in run.results:
        print(f"  {r.target.name:<{width}}  {_target_line(r)}")
        if run.dry_run:
            for t in r.transitions:
                for step in t.steps:
                    print(textwrap.indent(f"{step.render()};", " " * (width + 6)))
    for skipped in run.skipped:
        print(f"  {skipped.name:<{width}}  skipped on purpose by {skipped.actor}: {skipped.reason}")
    if not run.dry_run:
        beyond = any(r.after is not None and r.after != run.goal and r.exit_code == 0
                     for r in run.results)
        side = " or later" if run.action == "advance" else " or earlier"
        print(f"{run.at_goal()} of {len(run.results)} target(s) at {run.goal}"
              + (side if beyond else "")
              + (f", {len(run.skipped)} skipped" if run.skipped else ""))
    failed = run.failed
    if failed:
        sys.stdout.flush()
        sys.stderr.write(
            f"error: {len(failed)} of {len(run.results)} target(s) did not reach {run.goal}: "
            + ", ".join(f"{r.target.name} ({r.outcome}, exit {r.exit_code})" for r in failed)
            + "\n" + "".join(f"  - {r.target.name}: {r.error}\n" for r in failed)
            + "  hint: fix the cause and run the same command again: the targets at "
            f"{run.goal} do nothing, the others resume from their last done step\n")


def status_across(report: engine.AcrossStatus, *, detail: bool = False, wide: bool = False) -> None:
    """Per migration, where the targets are (or, with `detail`, each target's own status)."""
    if detail:
        for t in report.targets:
            print(f"== {t.target.name} ({t.target.shown}) ==")
            if t.error is not None:
                print(f"cannot be read: {t.error}")
            else:
                status(t.statuses, wide=wide)
            print()
    else:
        id_width = max([len(m.id) for m in report.migrations] + [9])
        for m in report.migrations:
            where = f"{m.phase} -> {m.next or 'complete'}" if m.phase is not None else "unknown"
            print(f"{m.id:<{id_width}}  {where:<24}  {m.summary()}")
            groups: dict[tuple[str, str], list[str]] = {}
            for blocker in m.blockers():
                key = (str(blocker["check"]), str(blocker["message"]))
                groups.setdefault(key, []).append(str(blocker["target"]))
            for (check, message), names in groups.items():
                shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
                print(f"  - [{check}] on {shown}: {message}")
            _backfill_across(m.backfill())
            for name, record in m.skipped.items():
                print(f"  - {name} skipped on purpose (at {record['to_phase']}) by "
                      f"{record['actor']}: {record['reason']}")
    bad = report.unreachable
    if bad:
        sys.stdout.flush()
        sys.stderr.write(
            f"error: {len(bad)} of {len(report.targets)} target(s) cannot be read: "
            + ", ".join(t.target.name for t in bad) + "\n"
            + "".join(f"  - {t.target.name}: {t.error}\n" for t in bad))


def _backfill_across(backfill: dict[str, Any]) -> None:
    """The backfill of a migration over the targets: the total, then a line per target."""
    if not backfill:
        return
    total = f"/{backfill['rows_total']:,}" if backfill["rows_total"] else ""
    share = f" ({backfill['percent']:.0f}%)" if backfill["percent"] is not None else ""
    print(f"  backfill: {backfill['rows_done']:,}{total} rows{share}; "
          f"{backfill['targets_done']} of {backfill['targets_started']} target(s) done")
    width = max(len(line["target"]) for line in backfill["lines"])
    for line in backfill["lines"]:
        of = f"/{line['rows_total']:,}" if line["rows_total"] is not None else ""
        pct = (f" ({line['percent']:.0f}%)" if line["percent"] is not None
               and line["status"] != "done" else "")
        print(f"    {line['target']:<{width}}  {line['table']}  {line['status']}  "
              f"{line['rows_done']:,}{of}{pct}")


def _target_line(r: engine.TargetResult) -> str:
    moved = f"{r.before} -> {r.after}" if r.before != r.after else f"at {r.after}"
    steps = sum(t.steps_run for t in r.transitions)
    if r.outcome == "done":
        return f"{moved}  done ({steps} step(s) run, {r.seconds:.1f}s)"
    if r.outcome == "no-op":
        return f"{moved}  nothing to do"
    if r.outcome == "planned":
        return f"would go {r.before} -> {r.transitions[-1].to_phase}"
    if r.outcome == "not-run":
        return f"at {r.before}  {r.error}"
    return f"{moved}  {r.outcome.upper()} (exit {r.exit_code}): {r.error}"


def backfill(run: engine.BackfillRun) -> None:
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
        if result.wal:
            print(f"  {_wal_text(result.wal)}")


def backfill_across(result: engine.BackfillAcross) -> None:
    """A line per table of each target, then what failed."""
    for entry in result.targets:
        if entry.run is not None and entry.run.action != "run":
            state = "paused" if entry.run.action == "pause" else "resumed"
            print(f"{entry.target} {result.migration_id}: {state} {entry.run.changed} "
                  "backfill(s)")
        elif entry.run is not None:
            for r in entry.run.results:
                checked = ", verified: every row agrees" if r.verification else ""
                print(f"{entry.target} {result.migration_id} {r.table}: {r.status}, "
                      f"{r.rows_done:,} rows covered, {r.rows_updated:,} updated{checked}")
        elif entry.error is not None:
            print(f"{entry.target} {result.migration_id}: failed: {entry.error.message}")
    if result.total is not None:
        from zdmigrate.output.progress_across import describe_total

        print(describe_total(result.total))


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
    print(fleet_table(instances))


def fleet_table(instances: Sequence[Instance]) -> str:
    """The instances as an aligned text table (what `zdmigrate fleet` prints)."""
    from zdmigrate.compat.checks import timestamp

    if not instances:
        return "no live instances (no heartbeats, app@version sessions or declarations)"
    from zdmigrate.fleet.model import targets_text

    header: tuple[str, ...] = ("APP", "VERSION", "SOURCE", "INSTANCE", "LAST SEEN",
                               "COUNTS UNTIL")
    rows: list[tuple[str, ...]] = [
        (i.app, i.version, i.source, i.instance_id, timestamp(i.last_seen), timestamp(i.expires_at))
        for i in instances
    ]
    if any(i.targets for i in instances):  # across targets: where each was seen
        header = (*header, "TARGETS")
        rows = [(*row, targets_text(i.targets)) for row, i in zip(rows, instances, strict=True)]
    widths = [max(len(r[n]) for r in (header, *rows)) for n in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )


def targets(found: Sequence[Target]) -> None:
    if not found:
        print("no targets configured: commands act on the database URL alone")
        return
    width = max(len(t.name) for t in found)
    for target in found:
        print(f"{target.name:<{width}}  {target.shown}  ({target.source})")
    print(f"{len(found)} target(s)")
