"""The pre-deploy gate: may version V of app A go out now, given each migration's phase?

For every migration whose `compat` names the app, the version going out must
fit the phase the database is in:

- ``V >= read_new_from`` needs the migration at switch-read or later (the new
  shape is ready to be read);
- ``V < old_unused_from`` (or below the highest threshold given) is refused once
  the migration is at contract: the old shape is gone, so that version must
  never go out again, also not as a rollback of a deploy;
- ``V < dual_write_from`` is refused from dual-write until contract, unless sync
  triggers do the dual write: rows it writes would be missing from the new shape.

The pending phases of every migration are linted too (offline). Without a
database the phases are unknown: the gate still lints, lists what it could
not check, and says no if a migration's compat names the app (not proven).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from zdmigrate import compat, db, fleet
from zdmigrate.compat import AppCompat, migration_needs_app_dual_writes, parse_version
from zdmigrate.config import Settings
from zdmigrate.errors import BadInput, Blocker, TargetsFailed
from zdmigrate.migration import Migration, load_migrations
from zdmigrate.phases import WORK_PHASES, Phase
from zdmigrate.state import Store

if TYPE_CHECKING:
    from zdmigrate.lint import Violation
    from zdmigrate.targets import NamedTarget

# the compat checks' ids (gate-read-new-too-early, ...) are in zdmigrate.compat
CHECK_NOT_CHECKED = "gate-not-checked"
CHECK_LINT = "lint"
CHECK_UNKNOWN_APP = "gate-unknown-app"


@dataclass(frozen=True)
class GateMigration:
    """What the gate needs to know of one migration.

    `phase` is the last completed phase, or None when it is unknown (no database).
    """

    id: str
    compat: Mapping[str, AppCompat]
    phase: Phase | None
    app_dual_writes_needed: bool = True
    path: str | None = None


@dataclass
class GateAnswer:
    """The gate's answer: `allowed` when there is no blocker; every reason otherwise."""

    app: str
    version: str
    blockers: list[Blocker] = field(default_factory=list)
    warnings: list[Blocker] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    #: Across several targets: each target's name and the phase of every migration there.
    targets: list[dict[str, Any]] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.blockers

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "version": self.version,
            "allowed": self.allowed,
            "reasons": [b.as_dict() for b in self.blockers],
            "warnings": [w.as_dict() for w in self.warnings],
            "not_checked": list(self.not_checked),
            "checked": list(self.checked),
            **({"targets": list(self.targets)} if self.targets else {}),
        }


def parse_deploy_version(text: str) -> Version:
    version = parse_version(text)
    if version is None:
        raise BadInput(
            f"--version {text!r} is not a PEP 440 version",
            hint="the gate compares versions with compat thresholds, e.g. 2.0 or 1.5.3",
        )
    return version


def deploy_blockers(app: str, version: Version, migration: GateMigration) -> list[Blocker]:
    """Why `version` of `app` may not go out while `migration` is at its phase (compat checks)."""
    return compat.deploy_blockers(
        app, version, migration_id=migration.id, rules=migration.compat.get(app),
        phase=migration.phase, app_dual_writes_needed=migration.app_dual_writes_needed,
    )


def decide(
    app: str,
    version_text: str,
    migrations: Sequence[GateMigration],
    *,
    lint_findings: Sequence[Any] | None,
    database_note: str | None = None,
    fleet_apps: Sequence[str] | None = None,
    new_app: bool = False,
) -> GateAnswer:
    """Put every check together into one answer.

    `lint_findings` are the linter's violations of the pending phases (None when
    the linter could not run); `database_note` says why the phases are unknown
    (None when they were read from the database). `fleet_apps` are the apps the
    fleet has a row of (None without a database); an app that neither a migration
    nor the fleet knows is not proven (a typo?) unless `new_app` says it is new.
    """
    version = parse_deploy_version(version_text)
    answer = GateAnswer(app, version_text)
    answer.blockers.extend(unknown_app_blockers(app, migrations, fleet_apps, new_app=new_app))
    for migration in migrations:
        rules = migration.compat.get(app)
        if rules is None:
            continue
        if migration.phase is None:
            note = (
                f"{migration.id}: compat of {app} ({_rules_text(rules)}) against the current "
                f"phase: {database_note or 'phase unknown'}"
            )
            answer.not_checked.append(note)
            answer.blockers.append(Blocker(
                CHECK_NOT_CHECKED,
                f"{migration.id} names {app} in compat, but its phase is unknown "
                f"({database_note or 'no database'}): it is not proven that {app} {version} "
                f"fits it; pass --database-url or set ZDMIGRATE_DATABASE_URL",
                {"migration": migration.id, "app": app, "version": version_text},
            ))
            continue
        found = deploy_blockers(app, version, migration)
        answer.blockers.extend(found)
        if not found:
            answer.checked.append(
                f"{migration.id} at {migration.phase}: {app} {version} fits "
                f"({_rules_text(rules)})"
            )
    if lint_findings is None:
        answer.not_checked.append("lint: the linter (zdmigrate.lint) is not available")
    else:
        for violation in lint_findings:
            blocker = lint_blocker(violation)
            if str(getattr(violation, "severity", "error")) == "error":
                answer.blockers.append(blocker)
            else:
                answer.warnings.append(blocker)
        answer.checked.append(
            f"lint of pending phases: {sum(1 for v in lint_findings if _is_error(v))} error(s)"
        )
    return answer


def unknown_app_blockers(
    app: str, migrations: Sequence[GateMigration], fleet_apps: Sequence[str] | None,
    *, new_app: bool,
) -> list[Blocker]:
    """A `gate-unknown-app` blocker when no migration's compat and no fleet row names `app`."""
    compat_apps = {name for m in migrations for name in m.compat}
    known = sorted(compat_apps | set(fleet_apps or ()))
    if new_app or app in known:
        return []
    listed = ", ".join(known) if known else "none"
    where = ("no migration's compat and no fleet row" if fleet_apps is not None
             else "no migration's compat (the fleet was not asked: no database URL)")
    return [Blocker(
        CHECK_UNKNOWN_APP,
        f"{where} knows app {app!r}: it is not proven that it may go out (known apps: "
        f"{listed}); if {app} is new, pass --new-app or add it to new_apps in "
        "[tool.zdmigrate]",
        {"app": app, "known_apps": known},
    )]


def _is_error(violation: Any) -> bool:
    return str(getattr(violation, "severity", "error")) == "error"


def lint_blocker(violation: Any) -> Blocker:
    """A linter `Violation` as a gate reason (keeps its rule, file, line and phase)."""
    data: dict[str, object] = dict(violation.as_dict()) if hasattr(violation, "as_dict") else {}
    where = getattr(violation, "location", None) or getattr(violation, "path", None) or ""
    phase = getattr(violation, "phase", None)
    rule = getattr(violation, "rule", "lint")
    return Blocker(
        CHECK_LINT,
        f"{where}: [{rule}] {violation.message}" + (f" (phase {phase})" if phase else ""),
        data,
    )


def run_gate(
    settings: Settings, *, app: str, version: str, new_app: bool = False,
    targets: Sequence[NamedTarget] | None = None, parallel: int | None = None,
) -> GateAnswer:
    """Load the migrations, read their phases (when a database URL is given), lint, decide.

    With `targets` (several databases: shards, tenants), the version must fit every
    target's phases: each target is read (at most `parallel` at once) and a reason
    found on some targets names them. Reads only. Bad input (a bad --version, a bad
    migration file) exits 2 before anything is checked; an unreachable database, or
    any target that cannot be read, exits 3 (fail closed).
    """
    parse_deploy_version(version)
    migrations = load_migrations(settings.migrations)
    if targets:
        return _run_gate_across(settings, migrations, app=app, version=version,
                                new_app=new_app, targets=targets,
                                parallel=parallel or settings.parallel)
    phases: dict[str, Phase] | None = None
    note: str | None = None
    fleet_apps: list[str] | None = None
    instances: list[fleet.Instance] = []
    if settings.database_url:
        read = _read_database(settings, settings.database_url, migrations, app)
        phases, fleet_apps, instances = read.phases, read.fleet_apps, read.instances
    else:
        note = "no database URL given"
    findings = lint_pending(migrations, phases, settings)
    answer = decide(app, version, _gate_migrations(migrations, phases, app),
                    lint_findings=findings, database_note=note, fleet_apps=fleet_apps,
                    new_app=new_app or app in settings.new_apps)
    if phases is not None:  # renames through views: do live instances have the search_path?
        from zdmigrate.engine.search_paths import gate_blockers

        known = phases
        answer.blockers.extend(gate_blockers(
            migrations, lambda m: known.get(m, Phase.PENDING), app, version, instances))
    return answer


@dataclass(frozen=True)
class _DatabaseRead:
    """What the gate reads of one database: each migration's phase, the fleet's apps, and
    the live instances of the app going out (for version-schema renames)."""

    phases: dict[str, Phase]
    fleet_apps: list[str]
    instances: list[fleet.Instance]


def _read_database(
    settings: Settings, url: str, migrations: Sequence[Migration], app: str
) -> _DatabaseRead:
    with db.connect(url, application_name="zdmigrate gate") as conn:
        schema = settings.state_schema
        store = Store(conn, schema)
        exists = store.exists()
        rows = store.migrations.load() if exists else {}
        live = fleet.live_instances(conn, schema, fleet.FleetSettings.from_settings(settings),
                                    remember_sessions=False)
        fleet_apps = [i.app for i in live]
        if exists:
            fleet_apps += store.instances.apps()
        instances = ([i for i in live if i.app == app]
                     if any(m.uses_version_schema for m in migrations) else [])
    phases = {m.id: rows[m.id].phase if m.id in rows else Phase.PENDING for m in migrations}
    return _DatabaseRead(phases, fleet_apps, instances)


def _gate_migrations(
    migrations: Sequence[Migration], phases: Mapping[str, Phase] | None, app: str
) -> list[GateMigration]:
    return [
        GateMigration(
            m.id,
            m.compat,
            phases[m.id] if phases is not None else None,
            migration_needs_app_dual_writes(m) if app in m.compat else True,
            str(m.path),
        )
        for m in migrations
    ]


def _run_gate_across(
    settings: Settings, migrations: Sequence[Migration], *, app: str, version: str,
    new_app: bool, targets: Sequence[NamedTarget], parallel: int,
) -> GateAnswer:
    """The gate for a set of targets: every target read, every reason naming its targets."""
    from zdmigrate.engine.search_paths import gate_blockers
    from zdmigrate.targets import each_target

    reads, failures = each_target(
        targets, lambda t: _read_database(settings, t.url, migrations, app), parallel=parallel)
    if failures:
        raise TargetsFailed(
            "gate: cannot read every target, so the answer is not proven", failures,
            hint="fix the target, or leave a decommissioned one out with --target",
        )
    names = [t.name for t in targets]
    # lint what is pending on any target: the least advanced phase of each migration
    least = {m.id: min(reads[n].phases[m.id] for n in names) for m in migrations}
    findings = lint_pending(migrations, least, settings)
    fleet_apps = sorted({a for n in names for a in reads[n].fleet_apps})
    answer = decide(app, version, _gate_migrations(migrations, least, app),
                    lint_findings=findings, fleet_apps=fleet_apps,
                    new_app=new_app or app in settings.new_apps)
    # the compat answers are the targets', each with the targets it holds on
    answer.blockers = [b for b in answer.blockers if b.check in (CHECK_LINT, CHECK_UNKNOWN_APP)]
    answer.checked = [c for c in answer.checked if c.startswith("lint")]
    parsed = parse_deploy_version(version)
    found: dict[tuple[str, str, str], tuple[Blocker, list[str]]] = {}
    fits: dict[tuple[str, str], list[str]] = {}
    for name in names:
        read = reads[name]
        for migration in _gate_migrations(migrations, read.phases, app):
            rules = migration.compat.get(app)
            if rules is None:
                continue
            blockers = deploy_blockers(app, parsed, migration)
            if not blockers:
                fits.setdefault((migration.id, str(migration.phase)), []).append(name)
            for b in blockers:
                found.setdefault((b.check, migration.id, b.message), (b, []))[1].append(name)
        for b in gate_blockers(migrations, functools.partial(_phase_in, read.phases),
                               app, version, read.instances):
            found.setdefault((b.check, "", b.message), (b, []))[1].append(name)
    for blocker, on in found.values():
        answer.blockers.append(Blocker(
            blocker.check, f"on {_on(on, len(names))}: {blocker.message}",
            {**blocker.details, "targets": on},
        ))
    for (migration_id, phase), on in fits.items():
        rules_ = next(m.compat[app] for m in migrations if m.id == migration_id)
        answer.checked.append(f"{migration_id} at {phase} on {_on(on, len(names))}: {app} "
                              f"{version} fits ({_rules_text(rules_)})")
    answer.targets = [{"name": n, "phases": {k: v.value for k, v in reads[n].phases.items()}}
                      for n in names]
    return answer


def _phase_in(phases: Mapping[str, Phase], migration_id: str) -> Phase:
    return phases.get(migration_id, Phase.PENDING)


def _on(names: list[str], of: int) -> str:
    """``all 16 targets``, or the targets by name (the first few, and how many more)."""
    from zdmigrate.fleet.model import targets_text

    if len(names) == of and of > 1:
        return f"all {of} targets"
    return ("target " if len(names) == 1 else "targets ") + targets_text(names)


def lint_pending(
    migrations: Sequence[Migration], phases: Mapping[str, Phase] | None, settings: Settings
) -> list[Violation]:
    """The linter's violations of every phase not yet run (all phases when unknown).

    Uses ``[tool.zdmigrate.lint]``, and skips grandfathered history up to and
    including its `since` revision, as `zdmigrate lint` does.
    """
    from zdmigrate.lint import LintConfig, lint_migration  # pglast: heavy, load when used

    config = LintConfig.from_mapping(settings.lint)
    if config.since:
        ids = [m.id for m in migrations]
        cut = next((i for i, mid in enumerate(ids) if mid == config.since
                    or mid.startswith(config.since)), None)
        if cut is not None:
            migrations = migrations[cut + 1 :]
    found: list[Violation] = []
    for migration in migrations:
        pending: list[Phase] | None = None
        if phases is not None:
            pending = [p for p in WORK_PHASES if p > phases.get(migration.id, Phase.PENDING)]
            if not pending:
                continue
        found.extend(lint_migration(migration, pending, config=config))
    return found


def _rules_text(rules: AppCompat) -> str:
    return ", ".join(f"{k} {v}" for k, v in rules.as_dict().items())
