"""`Store`: zdmigrate's state tables bound to one connection and one schema name.

    store = Store(conn, settings.state_schema)
    store.ensure_schema()
    store.migrations.set_phase("0002_rename", Phase.EXPAND, checksum)
    for row in store.backfills.progress(): ...

Each attribute is one table (one module of this package); its methods are that
module's functions without the connection and schema arguments.

Warning: like the functions, the methods run in the caller's transaction unless
they say otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

import psycopg

from zdmigrate.phases import Phase
from zdmigrate.state import backfills, instances, migrations, run_lock, schema, steps
from zdmigrate.state.backfills import BackfillRow, RangeRow, Totals
from zdmigrate.state.migrations import MigrationRow
from zdmigrate.state.phase_log import (
    log_finish,
    log_skip,
    log_start,
    phase_log,
    skipped_targets,
)
from zdmigrate.state.run_lock import LockHolder


class _Table:
    def __init__(self, conn: psycopg.Connection[Any], schema_name: str) -> None:
        self._conn = conn
        self._schema = schema_name


class Migrations(_Table):
    """``migrations``: each migration's last completed phase; phase-change notices."""

    def load(self) -> dict[str, MigrationRow]:
        return migrations.load_migrations(self._conn, self._schema)

    def load_phases(self) -> tuple[dict[str, Phase], list[str]]:
        return migrations.load_phases(self._conn, self._schema)

    def add_pending(self, migration_id: str, checksum: str) -> None:
        migrations.add_pending(self._conn, self._schema, migration_id, checksum)

    def set_phase(self, migration_id: str, phase: Phase, checksum: str) -> None:
        migrations.set_phase(self._conn, self._schema, migration_id, phase, checksum)

    def set_checksum(self, migration_id: str, checksum: str) -> None:
        migrations.set_checksum(self._conn, self._schema, migration_id, checksum)

    def notify_phase(self, migration_id: str, phase: Phase) -> None:
        migrations.notify_phase(self._conn, self._schema, migration_id, phase)

    def listen(self) -> None:
        migrations.listen(self._conn, self._schema)


class PhaseLog(_Table):
    """``phase_log``: every advance/rollback attempt."""

    def start(
        self, *, migration_id: str, action: str, from_phase: Phase, to_phase: Phase, actor: str,
        override_reason: str | None = None, outcome: str = "started", message: str | None = None,
    ) -> int:
        """Log an attempt (``started``, or at once finished with another `outcome`); its id."""
        return log_start(
            self._conn, self._schema, migration_id=migration_id, action=action,
            from_phase=from_phase, to_phase=to_phase, actor=actor,
            override_reason=override_reason, outcome=outcome, message=message,
        )

    def finish(self, log_id: int, outcome: str, message: str | None = None) -> None:
        log_finish(self._conn, self._schema, log_id, outcome, message)

    def entries(self, migration_id: str | None = None) -> list[dict[str, Any]]:
        return phase_log(self._conn, self._schema, migration_id)

    def skip(self, *, migration_id: str, target: str, from_phase: Phase, to_phase: Phase,
             actor: str, reason: str) -> int:
        """Record that `target` (another database) was left out of this phase on purpose."""
        return log_skip(self._conn, self._schema, migration_id=migration_id, target=target,
                        from_phase=from_phase, to_phase=to_phase, actor=actor, reason=reason)

    def skips(self) -> list[dict[str, Any]]:
        return skipped_targets(self._conn, self._schema)


class Steps(_Table):
    """``steps``: the done steps of unfinished phases."""

    def done(self, migration_id: str, phase: Phase, direction: str) -> dict[int, str]:
        """The steps of a phase recorded done: index -> step key."""
        return steps.done_steps(self._conn, self._schema, migration_id, phase, direction)

    def started(self, migration_id: str, phase: Phase, direction: str) -> dict[int, str]:
        """Steps started and not done: a run died while they ran (or a step failed)."""
        return steps.started_steps(self._conn, self._schema, migration_id, phase, direction)

    def mark_started(
        self, migration_id: str, phase: Phase, direction: str, index: int, key: str
    ) -> None:
        steps.mark_step_started(self._conn, self._schema, migration_id, phase, direction, index,
                                key)

    def mark_done(
        self, migration_id: str, phase: Phase, direction: str, index: int, key: str
    ) -> None:
        steps.mark_step_done(self._conn, self._schema, migration_id, phase, direction, index, key)

    def clear(
        self, migration_id: str, phases: Iterable[Phase], direction: str | None = None
    ) -> None:
        steps.clear_steps(self._conn, self._schema, migration_id, phases, direction)

    def partial_phases(self, migration_id: str) -> list[tuple[Phase, str, int]]:
        return steps.partial_phases(self._conn, self._schema, migration_id)


class Backfills(_Table):
    """``backfills`` and ``backfill_ranges``: progress, the operator's switches, claims."""

    def progress(self, migration_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return backfills.backfill_progress(self._conn, self._schema, migration_ids)

    def live_workers(self) -> dict[tuple[str, str], int]:
        return backfills.live_workers(self._conn, self._schema)

    def pause(
        self, migration_id: str, step_key: str, table_name: str, schema_name: str | None
    ) -> int:
        return backfills.pause(
            self._conn, self._schema, migration_id, step_key, table_name, schema_name
        )

    def resume(self, migration_id: str, step_key: str) -> int:
        return backfills.resume(self._conn, self._schema, migration_id, step_key)

    def merge_info(self, migration_id: str, step_key: str, info: dict[str, Any]) -> None:
        backfills.merge_info(self._conn, self._schema, migration_id, step_key, info)

    def delete_finished(self, migration_id: str, step_keys: Sequence[str]) -> int:
        return backfills.delete_finished(self._conn, self._schema, migration_id, step_keys)

    def delete_migration(self, migration_id: str) -> None:
        backfills.delete_migration(self._conn, self._schema, migration_id)

    def connected_workers(self, migration_id: str) -> list[dict[str, Any]]:
        return backfills.connected_workers(self._conn, self._schema, migration_id)

    def open(
        self, migration_id: str, step_key: str, *, table_name: str, schema_name: str,
        cursor: dict[str, Any], rows_total: int | None, batch_size: int,
    ) -> None:
        backfills.open_backfill(
            self._conn, self._schema, migration_id, step_key, table_name=table_name,
            schema_name=schema_name, cursor=cursor, rows_total=rows_total, batch_size=batch_size,
        )

    def read(self, migration_id: str, step_key: str) -> BackfillRow | None:
        return backfills.read_backfill(self._conn, self._schema, migration_id, step_key)

    def set_batch_size(self, migration_id: str, step_key: str, size: int) -> None:
        backfills.set_batch_size(self._conn, self._schema, migration_id, step_key, size)

    def lock_frontier(self, migration_id: str, step_key: str) -> dict[str, Any] | None:
        return backfills.lock_frontier(self._conn, self._schema, migration_id, step_key)

    def set_frontier(self, migration_id: str, step_key: str, cursor: dict[str, Any]) -> None:
        backfills.set_frontier(self._conn, self._schema, migration_id, step_key, cursor)

    def finish(self, migration_id: str, step_key: str) -> None:
        backfills.finish_backfill(self._conn, self._schema, migration_id, step_key)

    def add_range(self, migration_id: str, step_key: str, *, lower: Any, upper: Any,
                  owner: str) -> int:
        return backfills.add_range(self._conn, self._schema, migration_id, step_key,
                                   lower=lower, upper=upper, owner=owner)

    def claimed_ranges(self, migration_id: str, step_key: str) -> int:
        return backfills.claimed_ranges(self._conn, self._schema, migration_id, step_key)

    def take_over_range(self, migration_id: str, step_key: str, *, owner: str,
                        lease: float) -> RangeRow | None:
        return backfills.take_over_range(self._conn, self._schema, migration_id, step_key,
                                         owner=owner, lease=lease)

    def lock_range_owner(self, migration_id: str, step_key: str, range_no: int) -> str | None:
        return backfills.lock_range_owner(self._conn, self._schema, migration_id, step_key,
                                          range_no)

    def save_batch(
        self, migration_id: str, step_key: str, range_no: int, *, cursor: Any, scanned: int,
        updated: int, range_done: bool,
    ) -> Totals:
        return backfills.save_batch(
            self._conn, self._schema, migration_id, step_key, range_no, cursor=cursor,
            scanned=scanned, updated=updated, range_done=range_done,
        )

    def range_heartbeat(self, migration_id: str, step_key: str, range_no: int,
                        owner: str) -> None:
        backfills.range_heartbeat(self._conn, self._schema, migration_id, step_key, range_no,
                                  owner)


class Instances(_Table):
    """``instances``: live app instances, as rows for `zdmigrate.fleet`."""

    def table_state(self) -> tuple[bool, bool]:
        return instances.table_state(self._conn, self._schema)

    def live_rows(self) -> list[dict[str, Any]]:
        return instances.live_rows(self._conn, self._schema)

    def apps(self) -> list[str]:
        return instances.apps(self._conn, self._schema)

    def remember_sessions(self, sessions: Sequence[Mapping[str, Any]]) -> None:
        instances.remember_sessions(self._conn, self._schema, sessions)

    def upsert(
        self, *, app: str, instance_id: str, version: str, source: str, ttl: int,
        host: str | None, pid: int | None, info: Mapping[str, Any],
    ) -> dict[str, Any]:
        return instances.upsert(
            self._conn, self._schema, app=app, instance_id=instance_id, version=version,
            source=source, ttl=ttl, host=host, pid=pid, info=info,
        )

    def write_heartbeat(
        self, *, app: str, instance_id: str, version: str, host: str, pid: int,
        ttl_seconds: int, info: dict[str, Any],
    ) -> None:
        instances.write_heartbeat(
            self._conn, self._schema, app=app, instance_id=instance_id, version=version,
            host=host, pid=pid, ttl_seconds=ttl_seconds, info=info,
        )

    def unregister_heartbeat(self, *, app: str, instance_id: str) -> bool:
        return instances.unregister_heartbeat(self._conn, self._schema, app=app,
                                              instance_id=instance_id)

    def delete_heartbeat(self, *, app: str, instance_id: str) -> bool:
        return instances.delete_heartbeat(self._conn, self._schema, app=app,
                                          instance_id=instance_id)

    def delete_other_declared(self, *, app: str, version: str, keep: Sequence[str]) -> None:
        instances.delete_other_declared(self._conn, self._schema, app=app, version=version,
                                        keep=keep)

    def delete_version(self, *, app: str, version: str) -> int:
        return instances.delete_version(self._conn, self._schema, app=app, version=version)


class RunLock(_Table):
    """``run_lock`` and its advisory lock: one run per database."""

    def try_take(self) -> LockHolder | None:
        return run_lock.try_run_lock(self._conn, self._schema)

    def record_holder(self, *, actor: str, command: str) -> None:
        run_lock.record_lock_holder(self._conn, self._schema, actor=actor, command=command)

    def holder(self) -> LockHolder:
        return run_lock.lock_holder(self._conn, self._schema)

    def release(self) -> None:
        run_lock.release_run_lock(self._conn, self._schema)


class Store:
    """zdmigrate's state tables on `conn`, in the schema `schema_name`.

    The one door to the state schema for code outside this package: each table is
    an attribute, made on first use (a `Store` costs nothing until then).
    """

    def __init__(self, conn: psycopg.Connection[Any], schema_name: str) -> None:
        self.conn = conn
        self.schema = schema_name

    @cached_property
    def migrations(self) -> Migrations:
        return Migrations(self.conn, self.schema)

    @cached_property
    def phase_log(self) -> PhaseLog:
        return PhaseLog(self.conn, self.schema)

    @cached_property
    def steps(self) -> Steps:
        return Steps(self.conn, self.schema)

    @cached_property
    def backfills(self) -> Backfills:
        return Backfills(self.conn, self.schema)

    @cached_property
    def instances(self) -> Instances:
        return Instances(self.conn, self.schema)

    @cached_property
    def run_lock(self) -> RunLock:
        return RunLock(self.conn, self.schema)

    def exists(self) -> bool:
        """Whether the schema is in place (its ``migrations`` table exists)."""
        return schema.schema_exists(self.conn, self.schema)

    def ensure_schema(self) -> int:
        """Create or upgrade the schema; its own transaction (see `schema.ensure_schema`)."""
        return schema.ensure_schema(self.conn, self.schema)
