"""One plain function per CLI command; library users and tests call these directly.

Each takes `Settings` (and the command's own arguments), does the work through
the engine, and returns data; printing is the CLI's job.

    from zdmigrate import commands
    from zdmigrate.config import Settings
    commands.advance(Settings.load({"database_url": url, "migrations": "migrations"}))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from zdmigrate._lazy import lazy_module
from zdmigrate.compat import parse_version
from zdmigrate.config import Settings
from zdmigrate.errors import BadInput

if TYPE_CHECKING:
    from zdmigrate import db, engine, fleet, state
    from zdmigrate import gate as gate_module
    from zdmigrate.engine import MigrationStatus, PhasePlan, Transition
    from zdmigrate.lint import Violation
    from zdmigrate.migration import load_migrations
else:  # imported on first use: `lint` of plain SQL must not load SQLAlchemy or Alembic
    db = lazy_module("zdmigrate.db")
    engine = lazy_module("zdmigrate.engine")
    fleet = lazy_module("zdmigrate.fleet")
    state = lazy_module("zdmigrate.state")
    gate_module = lazy_module("zdmigrate.gate")

    def load_migrations(directory: Path | str) -> list:
        from zdmigrate.migration import load_migrations as load

        return load(directory)

Log = Callable[[str], None]

if TYPE_CHECKING:
    from zdmigrate.demo import DemoSummary


@dataclass
class InitResult:
    migrations: Path
    created_directory: bool
    schema: str | None
    schema_version: int | None


def init(settings: Settings) -> InitResult:
    """Create the migrations directory and zdmigrate's state schema. Safe to repeat."""
    folder = settings.migrations
    created = False
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{folder} exists and is not a directory")
    if not folder.exists():
        folder.mkdir(parents=True)
        created = True
    version = None
    if settings.database_url:
        with db.connect(settings, application_name="zdmigrate init") as conn:
            version = state.ensure_schema(conn, settings.state_schema)
    return InitResult(folder, created, settings.state_schema if version else None, version)


_NAME_RE = re.compile(r"[^0-9a-z]+")

_TEMPLATE = '''"""{title}"""

revision = "{revision}"
down_revision = {down_revision!r}

# Which app versions fit which phase (PEP 440 versions; any key may be left out):
# compat = {{"myapp": {{"dual_write_from": "1.5", "read_new_from": "2.0", "old_unused_from": "2.0"}}}}


def expand(ctx):
    """Add-only DDL: new columns, tables, indexes (CONCURRENTLY), NOT VALID constraints."""
    # ctx.execute("ALTER TABLE users ADD COLUMN full_name text")


def rollback_expand(ctx):
    """Undo expand (use IF EXISTS: it may run after an interrupted expand)."""
    # ctx.execute("ALTER TABLE users DROP COLUMN IF EXISTS full_name")


# def dual_write(ctx): ...       sync triggers, if the app does not write both shapes
# def backfill(ctx):             copy old rows, in batches
#     ctx.backfill("users", set={{"full_name": "name"}}, where="full_name IS NULL")
# def switch_read(ctx): ...      e.g. VALIDATE CONSTRAINT
# def contract(ctx):             destructive DDL, once no old app version runs
#     ctx.execute("ALTER TABLE users DROP COLUMN name")
'''


def new(settings: Settings, name: str) -> Path:
    """Scaffold a migration file after the current head; returns its path."""
    slug = _NAME_RE.sub("_", name.lower()).strip("_")
    if not slug:
        raise BadInput(f"migration name {name!r} has no letters or digits")
    folder = settings.migrations
    if not folder.is_dir():
        raise BadInput(f"migrations directory {folder} does not exist", hint="run `zdmigrate init`")
    migrations = load_migrations(folder)
    numbers = [int(m.group(1)) for p in folder.glob("*.py") if (m := re.match(r"(\d+)_", p.name))]
    revision = f"{(max(numbers) + 1 if numbers else 1):04d}_{slug}"
    path = folder / f"{revision}.py"
    if path.exists():
        raise BadInput(f"{path} already exists")
    head = migrations[-1].id if migrations else None
    path.write_text(_TEMPLATE.format(title=name, revision=revision, down_revision=head))
    return path


def adopt(settings: Settings, revision: str | None = None, *,
          log: Log = lambda m: None) -> list[str]:
    return engine.adopt(settings, revision, log=log)


def status(settings: Settings, *, log: Log = lambda m: None) -> list[MigrationStatus]:
    return engine.status(settings, log=log)


def plan(settings: Settings, migration_id: str | None = None) -> list[PhasePlan]:
    return engine.plan(settings, migration_id)


def advance(
    settings: Settings,
    migration_id: str | None = None,
    *,
    to: str | None = None,
    dry_run: bool = False,
    accept_changed: bool = False,
    override_reason: str | None = None,
    log: Log = lambda m: None,
) -> list[Transition]:
    return engine.advance(
        settings, migration_id, to=to, dry_run=dry_run, accept_changed=accept_changed,
        override_reason=override_reason, log=log,
    )


def rollback(
    settings: Settings,
    migration_id: str | None = None,
    *,
    to: str | None = None,
    accept_changed: bool = False,
    log: Log = lambda m: None,
) -> list[Transition]:
    return engine.rollback(settings, migration_id, to=to, accept_changed=accept_changed, log=log)


def override_reason(override_fleet_check: bool, reason: str | None) -> str | None:
    """The reason for `--override-fleet-check`: both or neither must be given."""
    if reason is not None and not override_fleet_check:
        raise BadInput("--reason is only for --override-fleet-check")
    if not override_fleet_check:
        return None
    if reason is None or not reason.strip():
        raise BadInput(
            "--override-fleet-check needs --reason \"...\": the phase log records why",
            hint='e.g. --override-fleet-check --reason "shop is not deployed in this region"',
        )
    return reason.strip()


# -- fleet -------------------------------------------------------------------------


def fleet_list(settings: Settings, app: str | None = None) -> list[fleet.Instance]:
    """Every live app instance from heartbeats, declarations and sessions."""
    fleet_settings = fleet.FleetSettings.from_settings(settings)
    with db.connect(settings, application_name="zdmigrate fleet") as conn:
        return fleet.live_instances(conn, settings.state_schema, fleet_settings, app=app)


def fleet_heartbeat(
    settings: Settings,
    *,
    app: str,
    version: str,
    instance_id: str | None = None,
    ttl: str | float | None = None,
    stop: bool = False,
) -> fleet.Instance | bool:
    """Write (or with `stop`, remove) one heartbeat; for apps without zdmigrate.runtime."""
    fleet_settings = fleet.FleetSettings.from_settings(settings)
    _check_app(app)
    if not stop:
        _check_version(version)
    seconds = fleet.ttl_seconds(ttl, "--ttl") if ttl is not None else fleet_settings.heartbeat_ttl
    with db.connect(settings, application_name="zdmigrate fleet") as conn:
        state.ensure_schema(conn, settings.state_schema)
        if stop:
            return fleet.stop_heartbeat(conn, settings.state_schema, app=app,
                                        instance_id=instance_id)
        return fleet.heartbeat(conn, settings.state_schema, app=app, version=version,
                               instance_id=instance_id, ttl=seconds)


def fleet_declare(
    settings: Settings, *, app: str, version: str, instances: int = 1,
    ttl: str | float | None = None,
) -> list[fleet.Instance]:
    """Declare `instances` live instances of `app` `version` (from a deploy system)."""
    fleet_settings = fleet.FleetSettings.from_settings(settings)
    _check_app(app)
    _check_version(version)
    seconds = fleet.ttl_seconds(ttl, "--ttl") if ttl is not None else fleet_settings.declare_ttl
    with db.connect(settings, application_name="zdmigrate fleet") as conn:
        state.ensure_schema(conn, settings.state_schema)
        return fleet.declare(conn, settings.state_schema, app=app, version=version,
                             instances=instances, ttl=seconds)


def fleet_retire(settings: Settings, *, app: str, version: str) -> int:
    """Say that `app` `version` no longer runs; returns the rows removed."""
    _check_app(app)
    with db.connect(settings, application_name="zdmigrate fleet") as conn:
        state.ensure_schema(conn, settings.state_schema)
        return fleet.retire(conn, settings.state_schema, app=app, version=version)


def _check_app(app: str) -> None:
    if not app or not app.strip() or any(c.isspace() for c in app):
        raise BadInput(f"--app {app!r} must be a non-empty name without spaces")


def _check_version(version: str) -> None:
    if parse_version(version) is None:
        raise BadInput(
            f"--version {version!r} is not a PEP 440 version",
            hint="compat thresholds are compared as PEP 440 versions, e.g. 2.0 or 1.5.3",
        )


# -- gate --------------------------------------------------------------------------


def gate(settings: Settings, *, app: str, version: str) -> gate_module.GateAnswer:
    """May `version` of `app` go out now? Lints offline; checks phases with a database."""
    return gate_module.run_gate(settings, app=app, version=version)

def example_migrations() -> Path:
    """The example shop's migrations: `migrations_example/` of a checkout, else the copy
    installed with the package (`zdmigrate._examples`)."""
    candidates = [Path.cwd() / "migrations_example",
                  Path(__file__).resolve().parents[2] / "migrations_example"]
    try:
        from importlib.resources import files

        candidates.append(Path(str(files("zdmigrate._examples"))))
    except ModuleNotFoundError:
        pass
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("0*.py")):
            return candidate
    raise BadInput("cannot find the example migrations",
                   hint="reinstall zdmigrate, or run the demo from a checkout")


def demo(
    settings: Settings,
    *,
    strategy: str = "rolling",
    rows: int | None = None,
    duration: float | None = None,
    rate: float | None = None,
    view: str = "quiet",
    stream: TextIO | None = None,
) -> DemoSummary:
    """The example history shipped under live traffic from a simulated fleet (see zdmigrate.demo),
    on an embedded PostgreSQL, or in a throw-away database on `settings.database_url`."""
    from zdmigrate import demo as demo_module

    return demo_module.run_demo(
        settings, migrations=example_migrations(), strategy=strategy,
        rows=demo_module.DEFAULT_ROWS if rows is None else rows,
        duration=demo_module.DEFAULT_DURATION if duration is None else duration,
        rate=demo_module.DEFAULT_RATE if rate is None else rate,
        view=view, stream=stream,
    )


@dataclass
class BackfillRun:
    """What `zdmigrate backfill` did for one migration."""

    migration_id: str
    results: list[Any]  # list[backfill.BackfillResult]
    action: str = "run"  # run, pause or resume
    changed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "migration": self.migration_id, "action": self.action, "changed": self.changed,
            "backfills": [r.as_dict() for r in self.results],
        }


def backfill(
    settings: Settings,
    migration_id: str | None = None,
    *,
    workers: int = 1,
    pause: bool = False,
    resume: bool = False,
    again: bool = False,
    reporter: Any = None,
    **options: Any,
) -> BackfillRun:
    """Run or resume the backfill steps of a migration (default: the first at dual-write).

    Safe to run in several processes on several machines at once: they share the
    work. Refused (exit 1) while the backfill phase's checks fail, e.g. while an
    app version that does not write both shapes is live. `pause`/`resume` flip the
    switch that every running worker obeys, and return at once. `again` walks a
    finished backfill once more (after verification found rows that disagree).
    """
    from zdmigrate import backfill as backfill_module
    from zdmigrate.errors import CheckFailed
    from zdmigrate.migration import find
    from zdmigrate.phases import Phase
    from zdmigrate.steps import BackfillStep

    if pause and resume:
        raise BadInput("--pause and --resume exclude each other")
    migrations = load_migrations(settings.migrations)
    statuses = {s.id: s for s in engine.status(settings)}
    if migration_id is None:
        waiting = [m for m in migrations if statuses[m.id].phase is Phase.DUAL_WRITE]
        if not waiting:
            raise BadInput(
                "no migration is waiting for its backfill (none is at dual-write)",
                hint="name the migration: zdmigrate backfill MIGRATION",
            )
        migration = waiting[0]
    else:
        migration = find(migrations, migration_id)
    steps = [s for s in migration.render(Phase.BACKFILL) if isinstance(s, BackfillStep)]
    if not steps:
        raise BadInput(f"{migration.id} has no backfill step")
    if pause or resume:
        with db.connect(settings, application_name="zdmigrate backfill") as conn:
            changed = backfill_module.set_paused(
                conn, settings.state_schema, migration.id, steps, paused=pause
            )
        return BackfillRun(migration.id, [], "pause" if pause else "resume", changed)
    current = statuses[migration.id]
    if current.phase < Phase.DUAL_WRITE:
        raise CheckFailed(
            f"{migration.id} is at {current.phase}: its backfill needs dual-write first "
            "(rows the app writes during the backfill would be missed)",
            hint=f"zdmigrate phase advance {migration.id} --to dual-write",
        )
    if current.next is Phase.BACKFILL and current.blocked_by:
        raise CheckFailed(f"{migration.id}: the backfill may not run yet", current.blocked_by)
    if again:
        with db.connect(settings, application_name="zdmigrate backfill") as conn:
            backfill_module.restart_finished(conn, settings.state_schema, migration.id, steps)
    results = [
        backfill_module.run_backfill(
            settings, migration_id=migration.id, step=step, workers=workers,
            reporter=reporter, **options,
        )
        for step in steps
    ]
    blockers = [
        b for r in results if r.verification is not None
        for b in [r.verification.blocker(migration.id)] if b is not None
    ]
    if blockers:
        raise CheckFailed(f"{migration.id}: backfill finished, but rows disagree", blockers)
    return BackfillRun(migration.id, results)

# -- lint --------------------------------------------------------------------------


@dataclass
class LintResult:
    violations: list[Violation]
    files_checked: int
    pg_version: int

    @property
    def errors(self) -> int:
        return sum(1 for v in self.violations if v.is_error)

    @property
    def warnings(self) -> int:
        return len(self.violations) - self.errors

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors or (strict and self.warnings))


def lint(
    settings: Settings,
    paths: Sequence[str] = (),
    *,
    phase: str | None = None,
    pg_version: int | str | None = None,
    since: str | None = None,
    stdin: TextIO | None = None,
    env: bool = False,
) -> LintResult:
    """Lint migrations, .sql files, stdin (``-``), Alembic projects and globs; offline.

    Paths default to the migrations directory. `phase` limits migrations to one
    phase and says which phase plain SQL runs in (default expand). `pg_version`
    comes from the argument, else ``[tool.zdmigrate.lint] pg_version``, else the
    server's (when a database URL is set), else 15; with a database URL, the
    live column types tell a widening from a rewrite. `env` runs each Alembic
    project's env.py offline first. A revision that cannot be loaded or
    rendered is one ``revision-not-linted`` violation, and the rest is linted.
    Bad paths and configs raise BadInput (exit 2); a linter bug raises
    LintInternalError (exit 2).
    """
    from zdmigrate.errors import LintInternalError, ZdmigrateError
    from zdmigrate.lint import LintConfig
    from zdmigrate.lint._config import parse_pg_version
    from zdmigrate.lint_targets import catalog_column_types, collect, lint_collected
    from zdmigrate.phases import Phase

    config = LintConfig.from_mapping(settings.lint)
    the_phase = Phase.parse(phase) if phase else None
    if the_phase is Phase.PENDING:
        raise BadInput("--phase pending has no SQL; use expand ... contract")
    server_version, catalog = _server_facts(settings, catalog_column_types)
    version = (
        parse_pg_version(pg_version, "--pg-version") if pg_version is not None
        else config.pg_version or server_version or 15
    )
    targets = collect(paths, default_dir=settings.migrations, stdin=stdin,
                      since=since if since is not None else config.since, config=config, env=env)
    try:
        found = lint_collected(targets, phase=the_phase, pg_version=version, config=config,
                               catalog_types=catalog)
    except ZdmigrateError:
        raise
    except Exception as exc:  # a linter bug must not look like a clean run or a traceback
        raise LintInternalError(
            f"internal error in the linter: {type(exc).__name__}: {exc}",
            hint="this is a zdmigrate bug; please report it with the file being linted",
        ) from exc
    return LintResult(found, targets.files, version)


def _server_facts(
    settings: Settings, catalog_types: Callable[[Any], dict[tuple[str, str], str]],
) -> tuple[int | None, dict[tuple[str, str], str] | None]:
    """With a database URL: the server's major version and its column types (for lint)."""
    if not settings.database_url:
        return None, None
    with db.connect(settings, application_name="zdmigrate lint") as conn:
        return int(conn.info.server_version) // 10000, catalog_types(conn)
