"""zdmigrate's own schema in the target database: the only code that reads or writes it.

One module per table, each a set of functions that take a psycopg connection
and the state schema's name:

- `schema`: creating and upgrading the schema (``schema_version``);
- `migrations`: each migration's last completed phase, and phase-change notices;
- `phase_log`: every advance/rollback attempt: who, when, from, to, outcome, override;
- `steps`: the steps of an unfinished phase that are already done (for resuming);
- `backfills`: progress of each backfill and the key ranges its workers claimed;
- `instances`: live app instances (heartbeats, declarations, remembered sessions);
- `run_lock`: who holds the one-run-per-database advisory lock, and since when.

`Store` binds a connection and a schema, so callers write
``store.migrations.set_phase(...)``-style code without repeating both.

Light on purpose: `zdmigrate.runtime` imports this package, so nothing here
imports more than the stdlib, psycopg and `zdmigrate.phases`.

Warning: the functions run in the caller's transaction unless they say otherwise.
"""

# the table modules first: `phase_log` below then names the function (as before the split)
from zdmigrate.state import backfills, instances, migrations, run_lock, schema, steps
from zdmigrate.state.backfills import backfill_progress
from zdmigrate.state.migrations import (
    MigrationRow,
    load_migrations,
    notify_channel,
    notify_phase,
    set_checksum,
    set_phase,
)
from zdmigrate.state.phase_log import log_finish, log_skip, log_start, phase_log, skipped_targets
from zdmigrate.state.run_lock import (
    LockHolder,
    lock_holder,
    record_lock_holder,
    release_run_lock,
    try_run_lock,
)
from zdmigrate.state.schema import CURRENT_VERSION, SCHEMA_VERSIONS, ensure_schema, schema_exists
from zdmigrate.state.steps import (
    clear_steps,
    done_steps,
    mark_step_done,
    mark_step_started,
    partial_phases,
    started_steps,
)
from zdmigrate.state.store import Store

__all__ = [
    "CURRENT_VERSION",
    "SCHEMA_VERSIONS",
    "LockHolder",
    "MigrationRow",
    "Store",
    "backfill_progress",
    "backfills",
    "clear_steps",
    "done_steps",
    "ensure_schema",
    "instances",
    "load_migrations",
    "lock_holder",
    "log_finish",
    "log_skip",
    "log_start",
    "mark_step_done",
    "mark_step_started",
    "migrations",
    "notify_channel",
    "notify_phase",
    "partial_phases",
    "phase_log",
    "record_lock_holder",
    "release_run_lock",
    "run_lock",
    "schema",
    "schema_exists",
    "set_checksum",
    "set_phase",
    "skipped_targets",
    "started_steps",
    "steps",
    "try_run_lock",
]
