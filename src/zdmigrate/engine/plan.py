"""`plan`: the SQL every phase (and its rollback) will run, rendered offline; changes nothing."""

from __future__ import annotations

from zdmigrate.config import Settings
from zdmigrate.engine.results import PhasePlan
from zdmigrate.migration import find, load_migrations
from zdmigrate.phases import Phase, phases_between


def plan(settings: Settings, migration_id: str | None = None) -> list[PhasePlan]:
    """The steps of every phase (and of its rollback), rendered offline: no database."""
    migrations = load_migrations(settings.migrations)
    chosen = [find(migrations, migration_id)] if migration_id else migrations
    plans = []
    for migration in chosen:
        for phase in phases_between(Phase.PENDING, Phase.CONTRACT):
            plans.append(PhasePlan(
                migration, phase, migration.render(phase),
                migration.render(phase, "rollback") if migration.can_roll_back(phase) else [],
            ))
    return plans
