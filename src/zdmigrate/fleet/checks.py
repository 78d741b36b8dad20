"""The fleet's phase check: gathers what compat's checks need (live instances, the
destructive statements of a contract) and asks them. The policy is `zdmigrate.compat`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import psycopg

from zdmigrate import compat
from zdmigrate.config import Settings
from zdmigrate.errors import Blocker
from zdmigrate.fleet.model import Instance
from zdmigrate.fleet.settings import FleetSettings
from zdmigrate.fleet.sources import live_instances
from zdmigrate.phases import Phase
from zdmigrate.steps import REMOVES_OLD_DEPENDENCY, SQLStep

if TYPE_CHECKING:
    from zdmigrate.migration import Migration


def check_migration(
    conn: psycopg.Connection[Any], settings: Settings, migration: Migration, target: Phase,
    *, fleet_instances: Callable[[], Sequence[Instance]] | None = None,
) -> list[Blocker]:
    """The fleet's blockers for `migration` entering `target` (engine phase check).

    `fleet_instances`, when this database is one target of several, gives the live
    instances of the whole set (`fleet_across`): an old instance on any target
    holds contract on every one. Instances seen here and not (yet) in that set
    count too.

    Only backfill and contract have fleet rules. A migration without `compat`
    has none at backfill; at contract it is refused as "not proven" when its
    contract is destructive (drops or renames what old app versions may use),
    since nothing says which versions are old.
    """
    if target is Phase.CONTRACT and not migration.compat:
        return compat.undeclared_contract_blockers(
            migration.id, destructive_contract_statements(migration)
        )
    if target not in (Phase.BACKFILL, Phase.CONTRACT) or not migration.compat:
        return []
    instances = live_instances(conn, settings.state_schema, FleetSettings.from_settings(settings))
    if fleet_instances is not None:
        across = list(fleet_instances())
        known = {(i.app, i.instance_id, i.version, i.source) for i in across}
        instances = across + [i for i in instances
                              if (i.app, i.instance_id, i.version, i.source) not in known]
    return compat.phase_blockers(
        instances,
        migration_id=migration.id,
        compat=migration.compat,
        target=target,
        app_dual_writes_needed=(
            target is not Phase.BACKFILL or compat.migration_needs_app_dual_writes(migration)
        ),
    )


def destructive_contract_statements(migration: Migration) -> list[str]:
    """The statements of `migration`'s contract that need fleet proof.

    Those the linter calls destructive, and every step an operation marks
    `REMOVES_OLD_DEPENDENCY` (a sync or fix trigger old versions rely on)
    whatever its SQL; never a step marked `SCAFFOLDING` (zdmigrate's own helpers).
    Suppression comments in the migration file are not read: they cannot lift it.
    """
    from zdmigrate.lint import destructive_statements  # pglast: only when a contract is judged

    steps = migration.render(Phase.CONTRACT)
    removes = [s.sql for s in steps if isinstance(s, SQLStep) and s.role == REMOVES_OLD_DEPENDENCY]
    unmarked = [replace(s, source=None) for s in steps
                if not (isinstance(s, SQLStep) and s.role is not None)]
    return removes + destructive_statements(unmarked)
