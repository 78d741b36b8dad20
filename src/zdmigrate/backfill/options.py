"""The knobs of a backfill run, validated once: batch sizing, throttles, workers' leases.

They come from a step's ``options`` (written in the migration file), overridden
by keyword arguments to `run_backfill` (the CLI flags). An unknown or malformed
option is a `BadInput` naming the option, before anything runs.

    BackfillOptions.from_mapping({"target_batch_ms": 150, "max_rows_per_second": 5000})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from zdmigrate.errors import BadInput

_SYNCHRONOUS_COMMIT = ("off", "local", "remote_write", "on", "remote_apply")


@dataclass(frozen=True)
class BackfillOptions:
    #: Rows in the first batch; later batches adapt to `target_batch_ms`.
    batch_size: int = 1000
    min_batch_size: int = 10
    max_batch_size: int = 50_000
    #: The duration one batch transaction should take, milliseconds. Row locks of a
    #: batch are held this long, so it bounds how long an app write may wait (at
    #: 150 ms, app writes that hit a batch's rows waited up to 0.22 s; at 50 ms,
    #: 0.07 s, with no loss of throughput: docs/backfill.md).
    target_batch_ms: float = 50.0
    #: Rows a worker claims at once (a key range), which other workers then skip.
    chunk_rows: int = 100_000
    #: 0 = no limit. Per process (shared by its workers).
    max_rows_per_second: float = 0.0
    #: Pause while replication lag exceeds this, seconds (0 = do not check).
    max_replication_lag: float = 10.0
    #: Read the lag from this standby (``pg_last_xact_replay_timestamp``) instead of
    #: ``pg_stat_replication`` on the primary.
    replica_dsn: str | None = None
    #: Check the lag (and the WAL) at most this often, seconds.
    lag_check_interval: float = 1.0
    #: A WAL budget, bytes per second of the server's WAL over 10 s; workers wait
    #: while it is exceeded (0 = none).
    max_wal_bytes_per_second: float = 0.0
    #: Once checkpoints driven by WAL volume come more often than this, seconds,
    #: slow down so that the next comes no sooner (0 = off). PostgreSQL warns
    #: below 30 s (``checkpoint_warning``); held to 30 s a 5M-row backfill ran at
    #: half its speed, held to 10 s at 0.7-0.9x the UPDATE's, with no gain to the
    #: app's writes either time (see docs/backfill.md). The default stops only the
    #: steepest pressure: checkpoints back to back, the checkpointer never resting.
    min_checkpoint_seconds: float = 5.0
    #: SET LOCAL lock_timeout of a batch, milliseconds; a batch that waits longer for
    #: an app's row lock is rolled back, made smaller, and retried after a backoff.
    lock_timeout_ms: float = 500.0
    #: SET LOCAL statement_timeout of a batch, milliseconds (0 = none).
    statement_timeout_ms: float = 30_000.0
    #: SET LOCAL synchronous_commit of a batch. ``off`` (the default) is safe for
    #: a backfill: a batch commits with its cursor, so a crash that loses the last
    #: commits loses their cursors as well and a rerun redoes those batches.
    synchronous_commit: str = "off"
    #: With workers left to the backfill: at most this many (it picks the server's
    #: cores less its active backends, and parks workers while app writes wait on it).
    max_workers: int = 4
    #: The server's cores, when the backfill cannot tell (0 = this machine's when the
    #: server is local, else the server's max_parallel_workers).
    server_cores: int = 0
    #: A throttled plain VACUUM of the table each time this share of it is done,
    #: percent (0 = never), and once at the end: old row versions are reused and
    #: the table stays near its size.
    vacuum_every_percent: float = 5.0
    #: The gentlest vacuum_cost_delay of those VACUUMs, milliseconds: the first
    #: round runs unthrottled, and the rounds slow down to this when they have
    #: time to spare.
    vacuum_cost_delay_ms: float = 2.0
    #: Emit a progress event at least this often, seconds, batches or not.
    progress_interval: float = 1.0
    #: A claimed range whose worker has not written for this long is taken over,
    #: seconds. (A range whose worker's connection is gone is taken over at once.)
    lease_seconds: float = 60.0
    #: How often an idle worker looks again for paused state, dead workers' ranges.
    poll_interval: float = 0.5
    #: Wait while an operator has paused the backfill (False: return at once).
    wait_when_paused: bool = True

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, where: str = "backfill") -> BackfillOptions:
        """Options from a mapping; None values are ignored; `where` names the source."""
        known = {f.name: f for f in fields(cls)}
        changes: dict[str, Any] = {}
        for name, value in values.items():
            if value is None:
                continue
            if name not in known:
                raise BadInput(
                    f"{where}: unknown backfill option {name!r}",
                    hint="known options: " + ", ".join(sorted(known)),
                )
            default = getattr(cls, name)
            changes[name] = _coerce(name, value, default, where)
        options = replace(cls(), **changes)
        options._check(where)
        return options

    def _check(self, where: str) -> None:
        if not self.min_batch_size <= self.batch_size <= self.max_batch_size:
            raise BadInput(
                f"{where}: batch sizes must satisfy min_batch_size <= batch_size <= "
                f"max_batch_size (got {self.min_batch_size}, {self.batch_size}, "
                f"{self.max_batch_size})"
            )
        for name in ("min_batch_size", "chunk_rows", "max_workers"):
            if getattr(self, name) < 1:
                raise BadInput(f"{where}: {name} must be at least 1")
        if self.target_batch_ms <= 0:
            raise BadInput(f"{where}: target_batch_ms must be positive")
        if self.synchronous_commit not in _SYNCHRONOUS_COMMIT:
            raise BadInput(
                f"{where}: backfill option synchronous_commit={self.synchronous_commit!r} "
                f"must be one of {', '.join(_SYNCHRONOUS_COMMIT)}"
            )
        if self.lease_seconds <= 0:
            raise BadInput(f"{where}: lease_seconds must be positive")


def _coerce(name: str, value: Any, default: Any, where: str) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError(value)
            number = int(float(value))
        elif isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(value)  # type: ignore[assignment]
        else:
            return str(value)
    except (TypeError, ValueError):
        kind = "a whole number" if isinstance(default, int) else "a number"
        raise BadInput(f"{where}: backfill option {name}={value!r} must be {kind}") from None
    if number < 0:
        raise BadInput(f"{where}: backfill option {name}={value!r} must not be negative")
    return number
