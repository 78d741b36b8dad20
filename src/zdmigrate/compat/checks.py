"""Every compat check: may an app version run, or go out, while a migration is at a phase?

Each check has a stable id, the ``check`` of the `Blocker` it returns:

- ``fleet-dual-write``: backfill needs every live instance at or above ``dual_write_from``;
- ``fleet-old-version``: contract needs every live instance at or above ``old_unused_from``;
- ``fleet-not-proven``: contract needs fleet data per app, or a compat declaration when
  the contract is destructive;
- ``gate-read-new-too-early``, ``gate-old-shape-dropped``, ``gate-dual-write-needed``:
  the pre-deploy gate's answers for one version going out.

Pure policy: callers pass in what they read (live instances, the phase, which
statements are destructive). The checks fail safe: an unparseable version is
treated as too old.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from packaging.version import Version

from zdmigrate.compat.declarations import AppCompat
from zdmigrate.errors import Blocker
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step

if TYPE_CHECKING:
    from zdmigrate.migration import Migration

CHECK_DUAL_WRITE = "fleet-dual-write"
CHECK_OLD_VERSION = "fleet-old-version"
CHECK_NOT_PROVEN = "fleet-not-proven"
#: The checks on live instances; `--override-fleet-check` may override these only.
FLEET_CHECKS = frozenset({CHECK_DUAL_WRITE, CHECK_OLD_VERSION, CHECK_NOT_PROVEN})

CHECK_READ_NEW_TOO_EARLY = "gate-read-new-too-early"
CHECK_OLD_SHAPE_DROPPED = "gate-old-shape-dropped"
CHECK_DUAL_WRITE_NEEDED = "gate-dual-write-needed"


class LiveInstance(Protocol):
    """What the checks need of a live instance (`zdmigrate.fleet.Instance`)."""

    @property
    def app(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def instance_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def last_seen(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def info(self) -> Mapping[str, Any]: ...
    @property
    def parsed_version(self) -> Version | None: ...
    @property
    def targets(self) -> tuple[str, ...]: ...
    def describe(self) -> str: ...


def timestamp(value: datetime) -> str:
    """How a moment is shown to people in fleet messages: ``2026-05-04 12:00:00+0000``."""
    return value.strftime("%Y-%m-%d %H:%M:%S%z")


# -- dual writes: app or database? --------------------------------------------------------

_CREATE_TRIGGER = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\b", re.I)


def needs_app_dual_writes(
    steps_by_phase: Mapping[Phase, Iterable[Step]], operations: Iterable[object] = ()
) -> bool:
    """False when database-side sync triggers keep both shapes in step.

    That is when the expand or dual-write phase creates a trigger, or an
    operation says it installs sync triggers (``sync_triggers = True``).
    """
    if any(getattr(op, "sync_triggers", False) for op in operations):
        return False
    for phase in (Phase.EXPAND, Phase.DUAL_WRITE):
        for step in steps_by_phase.get(phase, ()):
            if isinstance(step, SQLStep) and _CREATE_TRIGGER.search(step.sql):
                return False
    return True


def migration_needs_app_dual_writes(migration: Migration) -> bool:
    """`needs_app_dual_writes` for a loaded migration (renders its phases offline)."""
    return needs_app_dual_writes(
        {phase: migration.render(phase) for phase in (Phase.EXPAND, Phase.DUAL_WRITE)},
        migration.operations,
    )


# -- entering a phase: the live fleet -------------------------------------------------------


def phase_blockers(
    instances: Sequence[LiveInstance],
    *,
    migration_id: str,
    compat: Mapping[str, AppCompat],
    target: Phase,
    app_dual_writes_needed: bool = True,
) -> list[Blocker]:
    """Why the fleet forbids entering `target`; one blocker per offending instance.

    - backfill: every live instance of each app at or above ``dual_write_from``
      (skipped when sync triggers do the dual write);
    - contract: every live instance at or above ``old_unused_from`` (or the
      highest threshold given), and at least one instance known per app: with no
      data at all the answer is "not proven".
    """
    blockers: list[Blocker] = []
    for app, rules in sorted(compat.items()):
        mine = [i for i in instances if i.app == app]
        if target is Phase.BACKFILL and app_dual_writes_needed and rules.dual_write_from:
            blockers += [
                _too_old(i, migration_id, "dual_write_from", rules.dual_write_from, CHECK_DUAL_WRITE)
                for i in mine
                if _below(i, rules.dual_write_from)
            ]
        if target is Phase.CONTRACT:
            threshold = rules.old_shape_until
            if threshold is None:
                continue
            key, version = threshold
            if not mine:
                blockers.append(_not_proven(app, migration_id, key, version))
            blockers += [
                _too_old(i, migration_id, key, version, CHECK_OLD_VERSION)
                for i in mine
                if _below(i, version)
            ]
    return blockers


def undeclared_contract_blockers(migration_id: str, destructive: Sequence[str]) -> list[Blocker]:
    """A contract without `compat`: refused as not proven when it has destructive statements.

    `destructive` are those statements (`zdmigrate.lint.destructive_statements`):
    nothing says which app versions are old, so none can be shown to be gone.
    """
    if not destructive:
        return []
    first = " ".join(destructive[0].split())
    return [Blocker(
        CHECK_NOT_PROVEN,
        f"{migration_id}: its contract is destructive ({first[:80]}"
        f"{'...' if len(first) > 80 else ''}) but it declares no compat, so it is not proven "
        "that no app version still using the old shape is running; declare "
        "compat = {APP: {\"old_unused_from\": VERSION}} in the migration, or pass "
        "--override-fleet-check --reason '...'",
        {"migration": migration_id, "statements": len(destructive)},
    )]


def _below(instance: LiveInstance, threshold: Version) -> bool:
    parsed = instance.parsed_version
    return parsed is None or parsed < threshold  # unparseable: fail safe


def _too_old(
    instance: LiveInstance, migration_id: str, key: str, threshold: Version, check: str
) -> Blocker:
    parsed = instance.parsed_version
    why = (
        f"is not a PEP 440 version, so it cannot be shown to be at or above {key} {threshold}"
        if parsed is None
        else f"is below {key} {threshold}"
    )
    return Blocker(
        check,
        f"{migration_id}: {instance.describe()} {why}; {_unblock(instance, threshold)}",
        {
            "migration": migration_id,
            "app": instance.app,
            "version": instance.version,
            "instance_id": instance.instance_id,
            "source": instance.source,
            "last_seen": instance.last_seen.isoformat(),
            "expires_at": instance.expires_at.isoformat(),
            "required": f"{key} {threshold}",
            "unblock": _unblock(instance, threshold),
            **({"targets": list(instance.targets)} if instance.targets else {}),
        },
    )


def _unblock(instance: LiveInstance, threshold: Version) -> str:
    app, version = instance.app, instance.version
    if instance.source == "declared":
        return (
            f"deploy {app} >= {threshold}, then `zdmigrate fleet retire --app {app} "
            f"--version {version}`"
        )
    if instance.source == "session":
        return (
            f"upgrade {app} to >= {threshold} and close the connections with application_name "
            f"{instance.info.get('application_name', f'{app}@{version}')}; once gone they "
            f"still count until {timestamp(instance.expires_at)}, or `zdmigrate fleet retire "
            f"--app {app} --version {version}`"
        )
    return (
        f"upgrade or stop that instance ({app} >= {threshold}); a stopped instance drops out "
        f"when it stops cleanly, or when its heartbeat TTL runs out at "
        f"{timestamp(instance.expires_at)}"
    )


def _not_proven(app: str, migration_id: str, key: str, threshold: Version) -> Blocker:
    return Blocker(
        CHECK_NOT_PROVEN,
        f"{migration_id}: no fleet data for app {app!r}: it is not proven that no {app} "
        f"version below {key} {threshold} is running; report the live versions (heartbeats "
        f"from zdmigrate.runtime or `zdmigrate fleet heartbeat`, application_name "
        f"'{app}@VERSION' in its connection string, or `zdmigrate fleet declare --app {app} "
        f"--version VERSION`), or pass --override-fleet-check --reason '...'",
        {
            "migration": migration_id,
            "app": app,
            "required": f"{key} {threshold}",
            "unblock": "report live versions of the app, or override with a reason",
        },
    )


# -- going out: one version of an app, against a migration's phase -----------------------


def deploy_blockers(
    app: str, version: Version, *, migration_id: str, rules: AppCompat | None,
    phase: Phase | None, app_dual_writes_needed: bool = True,
) -> list[Blocker]:
    """Why `version` of `app` may not go out while the migration is at `phase`."""
    if rules is None or phase is None:
        return []
    mid = migration_id
    details: dict[str, object] = {
        "migration": mid, "app": app, "version": str(version), "phase": phase.value,
    }
    found: list[Blocker] = []
    if rules.read_new_from is not None and version >= rules.read_new_from \
            and phase < Phase.SWITCH_READ:
        found.append(Blocker(
            CHECK_READ_NEW_TOO_EARLY,
            f"{mid} is at {phase}, but {app} {version} reads the new shape (read_new_from "
            f"{rules.read_new_from}), which needs switch-read: run `zdmigrate phase advance "
            f"{mid} --to switch-read` first, or deploy a version below {rules.read_new_from}",
            {**details, "required": f"read_new_from {rules.read_new_from}",
             "unblock": f"zdmigrate phase advance {mid} --to switch-read"},
        ))
    threshold = rules.old_shape_until
    if phase is Phase.CONTRACT and threshold is not None and version < threshold[1]:
        key, needed = threshold
        found.append(Blocker(
            CHECK_OLD_SHAPE_DROPPED,
            f"{mid} is at contract: the old shape is gone, and {app} {version} still uses it "
            f"({key} {needed}); it must never go out again, also not as a rollback: deploy "
            f"{app} >= {needed}",
            {**details, "required": f"{key} {needed}", "unblock": f"deploy {app} >= {needed}"},
        ))
    if (
        rules.dual_write_from is not None
        and app_dual_writes_needed
        and Phase.DUAL_WRITE <= phase < Phase.CONTRACT
        and version < rules.dual_write_from
    ):
        found.append(Blocker(
            CHECK_DUAL_WRITE_NEEDED,
            f"{mid} is at {phase}, which relies on every live {app} writing both shapes, but "
            f"{app} {version} is below dual_write_from {rules.dual_write_from}: rows it writes "
            f"would be missing from the new shape; deploy {app} >= {rules.dual_write_from}",
            {**details, "required": f"dual_write_from {rules.dual_write_from}",
             "unblock": f"deploy {app} >= {rules.dual_write_from}"},
        ))
    return found
