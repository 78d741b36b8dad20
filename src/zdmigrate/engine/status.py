"""`status`: each migration's phase, its next phase, what blocks it, and backfill progress."""

from __future__ import annotations

from typing import Any

from zdmigrate import fleet, shadow_reads
from zdmigrate.config import Settings
from zdmigrate.engine import search_paths
from zdmigrate.engine.adoption import not_adopted, not_adopted_blocker
from zdmigrate.engine.checks import CheckContext, blockers_for
from zdmigrate.engine.results import MigrationStatus
from zdmigrate.engine.session import Log, Run, quiet, session
from zdmigrate.errors import Blocker
from zdmigrate.migration import Migration
from zdmigrate.ops._version_schema import schema_name


def status(
    settings: Settings, *, log: Log = quiet, migrations: list[Migration] | None = None
) -> list[MigrationStatus]:
    """Each migration: its phase, the next one, what blocks it, backfill progress.

    Reads only; a database that zdmigrate never touched shows every migration pending.
    `migrations`, when given, are the loaded migration files.
    """
    with session(settings, "status", lock=False, log=log, migrations=migrations) as run:
        has_schema = run.store.exists()
        progress = run.store.backfills.progress() if has_schema else []
        if progress:
            workers = run.store.backfills.live_workers()
            for b in progress:
                b["live_workers"] = workers.get((b["migration_id"], b["step_key"]), 0)
                if b["status"] == "running" and not b["live_workers"]:
                    b["status"] = "interrupted"  # marked running, but no worker is connected
        refusal = not_adopted(run.conn, run.schema, run.migrations)
        version_schemas = _version_schemas(run, settings)
        out: list[MigrationStatus] = []
        for migration in run.migrations:
            current = run.phase_of(migration.id)
            nxt = current.next
            row = run.states.get(migration.id)
            changed = bool(row and row.checksum and row.checksum != migration.checksum)
            blockers: list[Blocker] = []
            if refusal is not None and not out:
                blockers.append(not_adopted_blocker(refusal))
            if changed:
                blockers.append(Blocker("file-changed", f"{migration.path.name} changed after its "
                                        "phases started; revert it or pass --accept-changed"))
            if nxt is not None:
                ctx = CheckContext(run.conn, settings, migration, run.migrations, run.states, nxt,
                                   run.actor)
                blockers.extend(blockers_for(ctx))
            partial = (
                [{"phase": p.value, "direction": d, "steps_done": n}
                 for p, d, n in run.store.steps.partial_phases(migration.id)]
                if has_schema else []
            )
            version_schema = version_schemas.get(migration.id)
            out.append(MigrationStatus(
                migration.id, str(migration.path), migration.kind, current, nxt, blockers,
                [b for b in progress if b["migration_id"] == migration.id], partial, changed,
                shadow_reads.counts(run.conn, run.schema, migration.id, current)
                if has_schema else None,
                message=migration.message,
                version_schema=version_schema,
            ))
        return out


def _version_schemas(run: Run, settings: Settings) -> dict[str, dict[str, Any]]:
    """For each migration whose version schema exists now: the schema, which versions
    need it, and the search_path of each live app version that does."""
    in_flight = search_paths.in_flight(run.migrations, run.phase_of)
    if not in_flight:
        return {}
    live = fleet.live_instances(run.conn, run.schema, fleet.FleetSettings.from_settings(settings),
                                remember_sessions=False)
    paths = search_paths.for_versions(run.migrations, run.phase_of,
                                      [(i.app, i.version) for i in live])
    out = {}
    for migration in in_flight:
        name = schema_name(migration.id)
        out[migration.id] = {
            "schema": name,
            "read_new_from": migration.reads_new_names_from(),
            "live": [{"app": app, "version": version, "search_path": path,
                      "dsn_option": search_paths.dsn_option(path)}
                     for (app, version), path in paths.items() if name in path],
        }
    return out
