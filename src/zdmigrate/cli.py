"""The `zdmigrate` command line: parses arguments, calls `engine`, renders with `output`.

Errors map to the exit codes of the CLI contract.

Global options (`--database-url`, `--migrations`, `--format`, ...) are accepted
before the command and after it: ``zdmigrate --format json status`` and
``zdmigrate status --format json`` mean the same.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from zdmigrate import _cli_lint, _entry, output
from zdmigrate._cli_options import (
    GLOBAL_OPTIONS,
    LINT_FORMATS,
    LINT_GLOBALS,
    LINT_OPTIONS,
    Option,
    format_option,
)
from zdmigrate._lazy import lazy_module
from zdmigrate.config import PARALLEL_MAX, Settings
from zdmigrate.errors import (
    EXIT_BAD_INPUT,
    EXIT_CHECK_FAILED,
    EXIT_OK,
    BadInput,
    ZdmigrateError,
)

if TYPE_CHECKING:
    from zdmigrate import engine
    from zdmigrate import gate as gate_module
    from zdmigrate.targets import Target
else:  # imported on first use: `zdmigrate lint` must not load the engine's drivers
    engine = lazy_module("zdmigrate.engine")
    gate_module = lazy_module("zdmigrate.gate")

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("text", "json", "github", "sarif")
_current_format = {"value": "text"}

_GLOBAL_NAMES = ("database_url", "migrations", "output_format", "state_schema", "lock_timeout",
                 "statement_timeout", "retry_budget", "actor")
#: What each kind of command takes.
READS = ("database_url", "migrations", "state_schema")
RUNS = (*READS, "lock_timeout", "statement_timeout", "retry_budget", "actor")
OFFLINE = ("migrations",)
FLEET = ("database_url", "state_schema")


def _click_option(option: Option) -> Callable[[F], F]:
    """The click option of an `Option` of the table (`_cli_options`)."""
    settings: dict[str, Any] = {"help": option.help}
    if option.is_flag:
        settings["is_flag"] = True
    if option.metavar:
        settings["metavar"] = option.metavar
    if option.choices:
        settings["type"] = click.Choice(option.choices)
    if option.path:
        settings["type"] = click.Path(path_type=Path)
    if option.complete:
        settings["shell_complete"] = _COMPLETERS[option.complete]
    return click.option(option.flag, option.dest, **settings)


def _complete_migration(ctx: click.Context, param: click.Parameter,
                         incomplete: str) -> list[str]:
    """Shell completion: the revision ids in the migrations directory (read, not imported)."""
    import re

    obj = ctx.find_root().obj or {}
    folder = ctx.params.get("migrations") or obj.get("migrations")
    try:
        folder = folder or Settings.load({}).migrations
        ids = []
        for path in sorted(Path(folder).glob("*.py")):
            match = re.search(r"""^revision\s*(?::[^=]*)?=\s*["']([^"']+)["']""",
                              path.read_text(), re.MULTILINE)
            if match:
                ids.append(match.group(1))
    except (OSError, ZdmigrateError):
        return []
    return [i for i in ids if i.startswith(incomplete)]


def _complete_phase(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion: the phases' names."""
    from zdmigrate.phases import Phase

    return [p.value for p in Phase if p.value.startswith(incomplete)]


def _complete_rule(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion: the lint rules' ids."""
    from zdmigrate.lint.rules import all_rules

    return [rule for rule in sorted(all_rules()) if rule.startswith(incomplete)]


_COMPLETERS = {"migration": _complete_migration, "phase": _complete_phase, "rule": _complete_rule}


def global_options(
    names: tuple[str, ...] = RUNS, *, formats: tuple[str, ...] = ("text", "json")
) -> Callable[[F], F]:
    """The global options a command takes (`names`), and `--format` with its `formats`."""

    def decorate(function: F) -> F:
        function = _click_option(format_option(formats))(function)
        for name in reversed(names):
            function = _click_option(GLOBAL_OPTIONS[name])(function)
        return function

    return decorate


def _merged(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Global option values: those after the command win over those before it."""
    ctx = click.get_current_context()
    root = ctx.find_root()
    before = root.obj or {}
    merged = {name: kwargs.pop(name, None) for name in _GLOBAL_NAMES}
    taken = {param.name for param in ctx.command.params}
    for name in _GLOBAL_NAMES:
        if merged[name] is None and before.get(name) is not None:
            if name not in taken:
                flag = "--format" if name == "output_format" else "--" + name.replace("_", "-")
                raise BadInput(f"{flag} does not apply to `{ctx.command_path}`",
                               hint=f"see `{ctx.command_path} --help` for what it takes")
            merged[name] = before[name]
    return merged


def settings_from(
    kwargs: dict[str, Any], *, environ: dict[str, str] | None = None
) -> tuple[Settings, str]:
    """Settings and output format from the global options, removing them from `kwargs`."""
    merged = _merged(kwargs)
    output_format = merged.pop("output_format") or "text"
    # a format given before the command is checked against the command's, before any work
    for param in click.get_current_context().command.params:
        if param.name == "output_format" and isinstance(param.type, click.Choice):
            formats(output_format, tuple(str(c) for c in param.type.choices))
    _current_format["value"] = output_format
    return Settings.load(merged, environ=environ), output_format


def formats(output_format: str, allowed: tuple[str, ...] = ("text", "json")) -> str:
    if output_format not in allowed:
        path = click.get_current_context().command_path
        raise BadInput(f"--format {output_format} does not apply to `{path}`; it takes "
                       + ", ".join(allowed), hint=f"see `{path} --help`")
    return output_format


def _log_for(output_format: str) -> Callable[[str], None]:
    return output.log_line


def target_option(function: F) -> F:
    """``--target NAME|GLOB`` (repeatable): act on these of the configured targets only."""
    return click.option(
        "--target", "target_selectors", multiple=True, metavar="NAME|GLOB",
        help="Only these of the configured targets (exact name or glob, e.g. 'shard-*'; "
        "repeatable) [default: every target].",
    )(function)


def parallel_option(function: F) -> F:
    """``--parallel N``: with targets, how many a command works on at once."""
    return click.option(
        "--parallel", type=click.IntRange(1, PARALLEL_MAX), metavar="N",
        help="With targets: how many at once [env ZDMIGRATE_PARALLEL; default 4].",
    )(function)


def across_options(function: F) -> F:
    """The options of a phase command across targets: which, how many at once, canary, skip."""
    for option in reversed((
        parallel_option,
        click.option("--canary", metavar="NAME",
                     help="With targets: run this target first, alone; the others only if it "
                     "succeeds."),
        click.option("--skip-target", "skip_targets", multiple=True, metavar="NAME",
                     help="With targets: leave this (decommissioned) target out on purpose; "
                     "needs --reason, recorded in the phase log of every other target."),
    )):
        function = option(function)
    return target_option(function)


def _targets(settings: Settings, selectors: tuple[str, ...]) -> list[Target]:
    """The targets a command acts on ([] = the one database URL)."""
    found = engine.list_targets(settings, selectors)
    if found and settings.database_url and not settings.targets_query:
        output.log_line(f"note: {len(found)} target(s) configured: acting on them; the "
                        "database URL is not used")
    return found


def _one_database_only(parallel: int | None, canary: str | None,
                       skip_targets: tuple[str, ...]) -> None:
    """Refuse the options that only mean something across targets, when none is configured."""
    for flag, given in (("--parallel", parallel is not None), ("--canary", canary is not None),
                        ("--skip-target", bool(skip_targets))):
        if given:
            raise BadInput(f"{flag} needs targets, and none is configured",
                           hint="see docs/many-databases.md")


def override_reason(
    override_fleet_check: bool, reason: str | None, *, skipping: bool = False
) -> str | None:
    """The reason for `--override-fleet-check`: both or neither must be given (or a
    `--skip-target`, whose reason it is too)."""
    if reason is not None and not override_fleet_check and not skipping:
        raise BadInput("--reason is only for --override-fleet-check or --skip-target")
    if not override_fleet_check:
        return None
    if reason is None or not reason.strip():
        raise BadInput(
            "--override-fleet-check needs --reason \"...\": the phase log records why",
            hint='e.g. --override-fleet-check --reason "shop is not deployed in this region"',
        )
    return reason.strip()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@global_options(RUNS, formats=FORMATS)
@click.version_option(package_name="zdmigrate")
@click.pass_context
def cli(ctx: click.Context, /, **kwargs: Any) -> None:
    """Zero-downtime PostgreSQL schema changes by expand and contract."""
    ctx.obj = kwargs
    if kwargs.get("output_format"):
        _current_format["value"] = kwargs["output_format"]


@cli.command()
@global_options(READS)
def init(**kwargs: Any) -> None:
    """Create the migrations directory and zdmigrate's state schema (safe to repeat)."""
    settings, fmt = settings_from(kwargs)
    result = engine.init(settings)
    output.init(result, formats(fmt))


@cli.command()
@click.argument("name")
@click.option("--autogenerate", is_flag=True,
              help="Write the operations that bring the database to the app's models "
              "(target_metadata).")
@click.option("--rename", "renames", multiple=True, metavar="TABLE.OLD=NEW",
              help="With --autogenerate: a column the models renamed (else it is a drop and an add).")
@global_options(("database_url", "migrations"))
def new(name: str, autogenerate: bool, renames: tuple[str, ...], **kwargs: Any) -> None:
    """Scaffold a migration file NAME after the current head."""
    settings, fmt = settings_from(kwargs)
    if renames and not autogenerate:
        raise BadInput("--rename goes with --autogenerate")
    path = engine.new(settings, name, autogenerate=autogenerate, renames=renames)
    output.new(path, formats(fmt))


@cli.command()
@click.option("--wide", is_flag=True,
              help="Every blocker of every instance, in lines as long as they need.")
@target_option
@parallel_option
@global_options(READS)
def status(wide: bool, target_selectors: tuple[str, ...], parallel: int | None,
           **kwargs: Any) -> int:
    """Each migration: phase, next phase, what blocks it, backfill progress; with targets,
    where they all are (--target: each one's detail)."""
    settings, fmt = settings_from(kwargs)
    formats(fmt)
    targets = _targets(settings, target_selectors)
    if targets:
        report = engine.status_across(settings, targets, parallel=parallel,
                                      log=_log_for(fmt))
        output.status_across(report, fmt, detail=bool(target_selectors), wide=wide)
        return report.exit_code
    _one_database_only(parallel, None, ())
    statuses = engine.status(settings)
    output.status(statuses, fmt, wide=wide)
    return EXIT_OK


@cli.command("targets")
@target_option
@global_options(("database_url",))
def targets_command(target_selectors: tuple[str, ...], **kwargs: Any) -> None:
    """The configured targets (databases) and where each comes from; connects to none."""
    settings, fmt = settings_from(kwargs)
    found = engine.list_targets(settings, target_selectors)
    output.targets(found, formats(fmt))


@cli.command()
@click.argument("migration", required=False, shell_complete=_complete_migration)
@global_options(OFFLINE)
def plan(migration: str | None, **kwargs: Any) -> None:
    """The SQL each phase will run (and its rollback); needs no database, changes nothing."""
    settings, fmt = settings_from(kwargs)
    plans = engine.plan(settings, migration)
    output.plan(plans, formats(fmt))


@cli.command()
@click.argument("revision", required=False, shell_complete=_complete_migration)
@global_options((*READS, "actor"))
def adopt(revision: str | None, **kwargs: Any) -> None:
    """Take an existing Alembic history as the baseline: mark REVISION (default: the
    one in alembic_version) and all before it complete, without running them."""
    settings, fmt = settings_from(kwargs)
    formats(fmt)
    adopted = engine.adopt(settings, revision, log=output.log_line)
    output.adopt(adopted, fmt)


@cli.group()
def phase() -> None:
    """Move migrations through their phases."""


@phase.command("advance")
@click.argument("migration", required=False, shell_complete=_complete_migration)
@click.option("--to", "to", shell_complete=_complete_phase, help="Advance up to this phase (default: the next one).")
@click.option("--dry-run", is_flag=True, help="Check the gates and show the SQL; change nothing.")
@click.option("--accept-changed", is_flag=True,
              help="Go on although the migration file changed after a phase of it ran.")
@click.option("--override-fleet-check", is_flag=True,
              help="Go on although the fleet check refused (needs --reason; logged with --actor).")
@click.option("--reason", help="Why the fleet check is overridden, or a target skipped "
              "(recorded in the phase log).")
@across_options
@global_options(RUNS)
def phase_advance(migration: str | None, to: str | None, dry_run: bool, accept_changed: bool,
                  override_fleet_check: bool, reason: str | None,
                  target_selectors: tuple[str, ...], parallel: int | None, canary: str | None,
                  skip_targets: tuple[str, ...], **kwargs: Any) -> int:
    """Run the next phase(s) of MIGRATION (default: the oldest not complete), on every target
    when targets are configured."""
    settings, fmt = settings_from(kwargs)
    formats(fmt)
    from zdmigrate.output.progress import PlainReporter

    log = _log_for(fmt)
    overridden = override_reason(override_fleet_check, reason, skipping=bool(skip_targets))
    targets = _targets(settings, target_selectors)
    if targets:
        run_ = engine.advance_across(
            settings, targets,
            engine.AcrossOptions(migration, to=to, parallel=parallel, canary=canary,
                                 skip=skip_targets, reason=reason,
                                 accept_changed=accept_changed, log=log),
            dry_run=dry_run, override_reason=overridden,
            reporter_for=lambda target_log: PlainReporter(write=target_log))
        output.across(run_, fmt)
        return run_.exit_code
    _one_database_only(parallel, canary, skip_targets)
    transitions = engine.advance(
        settings, migration, to=to, dry_run=dry_run, accept_changed=accept_changed,
        override_reason=overridden, log=log, reporter=PlainReporter(write=log),
    )
    output.transitions(transitions, fmt)
    return EXIT_OK


@phase.command("rollback")
@click.argument("migration", required=False, shell_complete=_complete_migration)
@click.option("--to", "to", shell_complete=_complete_phase, help="Roll back to this phase (default: one phase back).")
@click.option("--accept-changed", is_flag=True,
              help="Go on although the migration file changed after a phase of it ran.")
@click.option("--reason", help="Why a target is skipped (recorded in the phase log).")
@across_options
@global_options(RUNS)
def phase_rollback(migration: str | None, to: str | None, accept_changed: bool,
                   reason: str | None, target_selectors: tuple[str, ...], parallel: int | None,
                   canary: str | None, skip_targets: tuple[str, ...], **kwargs: Any) -> int:
    """Undo phases of MIGRATION (default: the newest started), never past contract; on every
    target when targets are configured."""
    settings, fmt = settings_from(kwargs)
    formats(fmt)
    if reason is not None and not skip_targets:
        raise BadInput("--reason goes with --skip-target")
    targets = _targets(settings, target_selectors)
    if targets:
        run_ = engine.rollback_across(settings, targets, engine.AcrossOptions(
            migration, to=to, parallel=parallel, canary=canary, skip=skip_targets, reason=reason,
            accept_changed=accept_changed, log=_log_for(fmt)))
        output.across(run_, fmt)
        return run_.exit_code
    _one_database_only(parallel, canary, skip_targets)
    transitions = engine.rollback(settings, migration, to=to, accept_changed=accept_changed,
                                  log=_log_for(fmt))
    output.transitions(transitions, fmt)
    return EXIT_OK


@cli.command()
@click.option("--strategy", type=click.Choice(["rolling", "canary", "blue-green"]),
              default="rolling", show_default=True,
              help="How the new app versions are deployed.")
@click.option("--rows", type=click.IntRange(min=1),
              help="Users (each with an order) before the changes [default 20,000].")
@click.option("--duration", type=click.FloatRange(min=0),
              help="Seconds of traffic held over the deploy steps [default 30].")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True),
              help="Requests per second the whole fleet sends [default 200].")
@click.option("--database-url",
              help="Use this PostgreSQL server instead of an embedded one: a throw-away "
                   "database is created there and dropped afterwards (never taken from "
                   "ZDMIGRATE_DATABASE_URL).")
@global_options(())
def demo(strategy: str, rows: int | None, duration: float | None, rate: float | None,
         database_url: str | None, **kwargs: Any) -> int:
    """Ship the example migrations under live traffic from a simulated fleet, 0 failed requests.

    Without --database-url it starts an embedded PostgreSQL; with one, it works in a
    throw-away database it creates on that server and drops afterwards.
    """
    from zdmigrate.config import redact_url

    before = (click.get_current_context().find_root().obj or {})
    if before.get("migrations") is not None:
        raise BadInput("--migrations does not apply to `zdmigrate demo`: it ships its own "
                       "example migrations")
    database_url = database_url or before.get("database_url")
    # the environment never picks a server for the demo: it creates and drops databases there
    environ = {k: v for k, v in os.environ.items() if k != "ZDMIGRATE_DATABASE_URL"}
    settings, fmt = settings_from(kwargs, environ=environ)
    settings = settings.with_(database_url=database_url)
    formats(fmt)
    if database_url:
        output.log_line(f"demo: on the server {redact_url(database_url)} (--database-url), "
                        "in a throw-away database dropped afterwards")
    elif os.environ.get("ZDMIGRATE_DATABASE_URL"):
        output.log_line("demo: ZDMIGRATE_DATABASE_URL is set but not used: the demo starts an "
                        "embedded PostgreSQL (pass --database-url to use a server)")
    if fmt == "json":
        view, stream = "plain", sys.stderr
    else:
        view, stream = ("live" if sys.stdout.isatty() else "plain"), sys.stdout
    # the demo sits on top of everything: reached only here, on first use
    from zdmigrate import demo as demo_module
    from zdmigrate.demo.examples import example_migrations

    summary = demo_module.run_demo(
        settings, migrations=example_migrations(), strategy=strategy,
        rows=demo_module.DEFAULT_ROWS if rows is None else rows,
        duration=demo_module.DEFAULT_DURATION if duration is None else duration,
        rate=demo_module.DEFAULT_RATE if rate is None else rate,
        view=view, stream=stream,
    )
    if fmt == "json":
        output.emit_json(summary.as_dict())
    else:
        from zdmigrate.output.demo import summary_text

        print(summary_text(summary))
    return EXIT_OK if summary.ok else EXIT_CHECK_FAILED


@cli.command()
@click.argument("migration", required=False, shell_complete=_complete_migration)
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker threads in this process (more processes may run at once) "
              "[chosen from the server's cores and load].")
@click.option("--batch-size", type=click.IntRange(min=1), help="Rows in the first batch.")
@click.option("--min-batch-size", type=click.IntRange(min=1), help="Smallest batch [10].")
@click.option("--max-batch-size", type=click.IntRange(min=1), help="Largest batch [50000].")
@click.option("--target-batch-ms", type=click.FloatRange(min=1),
              help="Duration each batch aims for, ms [50].")
@click.option("--max-rows-per-second", type=click.FloatRange(min=0),
              help="Cap for this process, rows/s [0 = none].")
@click.option("--max-replication-lag", help="Pause while replicas lag more, e.g. 10s [0 = off].")
@click.option("--replica-dsn", help="Read the lag from this standby instead of the primary.")
@click.option("--pause", is_flag=True, help="Pause the running backfill everywhere, and return.")
@click.option("--resume", is_flag=True, help="Resume a paused backfill, and return.")
@click.option("--again", is_flag=True,
              help="Walk a finished backfill once more (rows that disagree are fixed).")
@target_option
@parallel_option
@global_options(RUNS)
def backfill(migration: str | None, workers: int | None, pause: bool, resume: bool, again: bool,
             target_selectors: tuple[str, ...], parallel: int | None, **kwargs: Any) -> None:
    """Run or resume the backfill of MIGRATION (default: the first at dual-write).

    With targets configured, on every target (or those --target picks), --parallel
    at once, with one progress bar over all of them.
    """
    from zdmigrate.config import parse_duration
    from zdmigrate.output.progress import choose_reporter
    from zdmigrate.output.progress_across import choose_targets_reporter

    options = {name: kwargs.pop(name) for name in (
        "batch_size", "min_batch_size", "max_batch_size", "target_batch_ms",
        "max_rows_per_second", "max_replication_lag", "replica_dsn")}
    if options["max_replication_lag"] is not None:
        options["max_replication_lag"] = parse_duration(
            options["max_replication_lag"], "--max-replication-lag")
    settings, fmt = settings_from(kwargs)
    formats(fmt)
    targets = _targets(settings, target_selectors)
    if targets:
        if pause or resume:
            result = engine.backfill_across(settings, targets, migration, parallel=parallel,
                                            pause=pause, resume=resume)
            output.backfill_across(result, fmt)
            return
        across = choose_targets_reporter(fmt)
        with across:
            result = engine.backfill_across(
                settings, targets, migration, parallel=parallel, workers=workers,
                again=again, reporter=across, **options)
        output.backfill_across(result, fmt)
        return
    _one_database_only(parallel, None, ())
    if pause or resume:
        output.backfill(engine.backfill(settings, migration, pause=pause, resume=resume), fmt)
        return
    with choose_reporter(fmt) as reporter:
        run_ = engine.backfill(settings, migration, workers=workers, reporter=reporter,
                               again=again, **options)
    output.backfill(run_, fmt)


@cli.group(invoke_without_command=True)
@click.option("--app", help="Show only this app.")
@target_option
@parallel_option
@global_options(FLEET)
@click.pass_context
def fleet(ctx: click.Context, /, app: str | None, target_selectors: tuple[str, ...],
          parallel: int | None, **kwargs: Any) -> None:
    """Live app versions from heartbeats, sessions (application_name) and declarations.

    With targets configured, of every target (or those --target picks): an instance
    seen on any of them counts, and the TARGETS column says where it was seen.
    """
    if ctx.invoked_subcommand is not None:
        if target_selectors or parallel is not None:
            raise BadInput(f"--target and --parallel do not apply to `zdmigrate fleet "
                           f"{ctx.invoked_subcommand}`: it writes to one database",
                           hint="pass --database-url of the target")
        # global options between `fleet` and its subcommand count as given before it
        root = ctx.find_root()
        root.obj = {**(root.obj or {}), **{k: v for k, v in kwargs.items() if v is not None}}
        return
    settings, fmt = settings_from(kwargs)
    targets = _targets(settings, target_selectors)
    if not targets:
        _one_database_only(parallel, None, ())
    instances = engine.fleet_list(settings, app, targets=targets, parallel=parallel)
    output.fleet(instances, formats(fmt))


@fleet.command("heartbeat")
@click.option("--app", required=True, help="The app's name, as in compat.")
@click.option("--version", "version", default="", help="The version this instance runs.")
@click.option("--instance", "instance_id", help="Instance id [default: this host's name].")
@click.option("--ttl", help="Counts as live this long after the beat, e.g. 60s [default 60s].")
@click.option("--stop", is_flag=True, help="Remove this instance's heartbeat (clean shutdown).")
@global_options(FLEET)
def fleet_heartbeat(app: str, version: str, instance_id: str | None, ttl: str | None,
                    stop: bool, **kwargs: Any) -> None:
    """Say that an instance of APP runs VERSION (for apps without zdmigrate.runtime)."""
    settings, fmt = settings_from(kwargs)
    formats(fmt)
    if not stop and not version:
        raise BadInput("fleet heartbeat needs --version (or --stop)")
    result = engine.fleet_heartbeat(settings, app=app, version=version,
                                    instance_id=instance_id, ttl=ttl, stop=stop)
    output.heartbeat(result, fmt)


@fleet.command("declare")
@click.option("--app", required=True, help="The app's name, as in compat.")
@click.option("--version", "version", required=True, help="The version deployed.")
@click.option("--instances", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many instances run it.")
@click.option("--ttl", help="Counts as live this long unless declared again [default 24h].")
@global_options(FLEET)
def fleet_declare(app: str, version: str, instances: int, ttl: str | None,
                  **kwargs: Any) -> None:
    """Declare that VERSION of APP is deployed (from a deploy system)."""
    settings, fmt = settings_from(kwargs)
    formats(fmt)
    declared = engine.fleet_declare(settings, app=app, version=version, instances=instances,
                                    ttl=ttl)
    output.declared(declared, fmt, app=app, version=version)


@fleet.command("retire")
@click.option("--app", required=True, help="The app's name, as in compat.")
@click.option("--version", "version", required=True, help="The version that no longer runs.")
@global_options(FLEET)
def fleet_retire(app: str, version: str, **kwargs: Any) -> None:
    """Say that VERSION of APP no longer runs (removes its declarations)."""
    settings, fmt = settings_from(kwargs)
    formats(fmt)
    removed = engine.fleet_retire(settings, app=app, version=version)
    output.retire(removed, fmt, app=app, version=version)


@cli.command()
@click.option("--app", required=True, help="The app about to be deployed.")
@click.option("--version", "version", required=True, help="The version about to go out.")
@click.option("--new-app", is_flag=True,
              help="APP is new: no migration or fleet row knows it yet (else: not proven).")
@target_option
@parallel_option
@global_options(READS, formats=output.GATE_FORMATS)
def gate(app: str, version: str, new_app: bool, target_selectors: tuple[str, ...],
         parallel: int | None, **kwargs: Any) -> int:
    """May VERSION of APP go out now? Exit 0 yes, 1 no (with every reason).

    With targets configured, for every target (or those --target picks): VERSION
    must fit the phases of each; a target that cannot be read is exit 3.
    """
    settings, fmt = settings_from(kwargs)
    formats(fmt, output.GATE_FORMATS)
    targets = _targets(settings, target_selectors)
    if not targets:
        _one_database_only(parallel, None, ())
    answer = gate_module.run_gate(settings, app=app, version=version, new_app=new_app,
                                  targets=targets, parallel=parallel)
    print(output.render_gate(answer, fmt))
    return EXIT_OK if answer.allowed else EXIT_CHECK_FAILED


def _lint_options(function: F) -> F:
    """`lint`'s options, from the table the lean parser reads too (`_cli_options`)."""
    for option in reversed(LINT_OPTIONS):
        function = _click_option(option)(function)
    return function


@cli.command()
@click.argument("paths", nargs=-1)
@_lint_options
@global_options(LINT_GLOBALS, formats=LINT_FORMATS)
def lint(paths: tuple[str, ...], phase: str | None, pg_version: str | None, since: str | None,
         strict: bool, use_env: bool, list_rules: bool, explain: str | None, **kwargs: Any) -> int:
    """Lint migrations, .sql files, Alembic revisions/projects, globs or stdin (-); offline.

    Exit 0 no errors, 1 errors (warnings too with --strict), 2 bad input.
    """
    from zdmigrate.output import lint as reporters

    settings, fmt = settings_from(kwargs)
    formats(fmt, reporters.FORMATS)
    return _cli_lint.lint_command(
        settings, fmt, paths=paths, phase=phase, pg_version=pg_version, since=since,
        strict=strict, use_env=use_env, list_rules=list_rules, explain=explain,
        freeze_loaded=_entry.is_process_entry())


#: The entry point (`zdmigrate._entry`): lint on its lean path, the rest through `run_click`.
main = _entry.main
run = _entry.run


def run_click(argv: list[str] | None = None) -> int:
    """Run the command line with click and return its exit code."""
    _current_format["value"] = "text"
    try:
        result = cli.main(args=argv, prog_name="zdmigrate", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        # click's own errors in the same style as ours: `error: ...` and a hint
        sys.stderr.write(f"error: {exc.format_message()}\n")
        if isinstance(exc, click.UsageError):
            path = exc.ctx.command_path if exc.ctx is not None else "zdmigrate"
            sys.stderr.write(f"  hint: see `{path} --help`\n")
            return EXIT_BAD_INPUT
        return int(exc.exit_code)
    except click.exceptions.Abort:
        sys.stderr.write("aborted\n")
        return 130
    except (KeyboardInterrupt, Exception) as exc:
        return _entry.failed(exc, _current_format["value"])
    return result if isinstance(result, int) else 0
