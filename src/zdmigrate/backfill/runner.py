"""Run or resume one backfill step: workers, each batch one short transaction.

`run_backfill` opens its own connections (one per worker thread) from the
settings' database URL, so it is safe to call while the caller holds a
connection of its own. Each batch: lock and check the worker's range, find the
batch's last key, ``UPDATE ... WHERE key in (cursor, last] AND (where)``, save
the cursor, commit. A kill at any moment loses at most the batch in flight, and
that batch rolls back with its cursor. Memory does not grow with the table: no
row is ever brought into the process, only keys of batch boundaries.

Warning: the UPDATE holds its rows' locks until the batch commits; batches are
sized to `target_batch_ms` so an app write waits at most about one batch. A
batch that waits on an app's lock longer than `lock_timeout_ms` rolls back and
retries smaller, after a backoff.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import psycopg

from zdmigrate import db
from zdmigrate.backfill import upkeep
from zdmigrate.backfill.claims import (
    BackfillReset,
    Claim,
    Claims,
    ClaimState,
    RangeLost,
    Totals,
)
from zdmigrate.backfill.keys import (
    TableKey,
    TableRef,
    find_key,
    resolve_table,
    row_total,
    table_blocks,
    where_written,
)
from zdmigrate.backfill.options import BackfillOptions
from zdmigrate.backfill.progress import ProgressMeter, Reporter
from zdmigrate.backfill.sizing import BatchSizer
from zdmigrate.backfill.throttle import (
    LagSource,
    LagThrottle,
    PrimaryLag,
    RateLimiter,
    ReplicaLag,
    WalThrottle,
)
from zdmigrate.backfill.verify import Verification, verify_backfill
from zdmigrate.backfill.walkers import BlockWalker, KeysetWalker, Walker, key_text
from zdmigrate.config import Settings
from zdmigrate.db import Backoff
from zdmigrate.errors import (
    BATCH_RETRY_SQLSTATES,
    BadInput,
    DatabaseUnreachable,
    LockRetriesExhausted,
    StepFailed,
    first_line,
    transient_reason,
)
from zdmigrate.failpoints import failpoint
from zdmigrate.state import Store
from zdmigrate.steps import BackfillStep


@dataclass(frozen=True)
class BackfillResult:
    """What a run did. `rows_done`/`rows_updated` count every worker of every run."""

    migration_id: str
    step_key: str
    table: str
    key: str
    #: done, paused (an operator paused it and wait_when_paused is off), stopped
    status: str
    rows_done: int
    rows_updated: int
    rows_total: int | None
    #: Batches this call committed.
    batches: int
    elapsed: float
    verification: Verification | None = None
    messages: list[str] = field(default_factory=list)
    #: Workers this call ran, and why that many.
    workers: int = 1
    workers_reason: str = ""
    #: pg_table_size of the table when the backfill first started, and now.
    table_bytes_before: int | None = None
    table_bytes_after: int | None = None
    vacuums: int = 0
    #: The server's WAL and checkpoints while it ran, and how long the WAL throttle
    #: held the workers: wal_bytes, checkpoints_timed, checkpoints_requested,
    #: wal_throttled_seconds (empty when it had nothing to do).
    wal: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status == "done"

    def as_dict(self) -> dict[str, Any]:
        return {
            "migration_id": self.migration_id, "step_key": self.step_key, "table": self.table,
            "key": self.key, "status": self.status, "rows_done": self.rows_done,
            "rows_updated": self.rows_updated, "rows_total": self.rows_total,
            "batches": self.batches, "elapsed": round(self.elapsed, 3),
            "verification": self.verification.as_dict() if self.verification else None,
            "workers": self.workers, "workers_reason": self.workers_reason,
            "table_bytes_before": self.table_bytes_before,
            "table_bytes_after": self.table_bytes_after, "vacuums": self.vacuums,
            "wal": self.wal,
        }


#: Session settings of every backfill connection: ISO dates so key text round-trips.
_SESSION = {"DateStyle": "ISO, YMD", "IntervalStyle": "postgres", "extra_float_digits": "3"}


def connect(url: str) -> psycopg.Connection[Any]:
    """A connection for backfill work: autocommit (explicit short transactions), no
    server-side prepared statements (poolers), ISO dates so key text round-trips."""
    return db.connect(
        url, application_name="zdmigrate-backfill", autocommit=True, prepare_threshold=None,
        session=_SESSION,
    )


def run_backfill(
    settings: Settings,
    *,
    migration_id: str,
    step: BackfillStep,
    workers: int | None = None,
    reporter: Reporter | None = None,
    lag_source: LagSource | None = None,
    stop: threading.Event | None = None,
    verify: bool = True,
    **options: Any,
) -> BackfillResult:
    """Run or resume the backfill `step` of `migration_id` until every range is done.

    Several calls (in threads, processes or on other machines) on the same step
    cooperate. With `workers` None the backfill picks them from the server's cores
    and load (at most ``max_workers``) and parks some while app writes wait on its
    locks; the result and `status` say why. `options` override the step's own
    options (see `BackfillOptions`);
    `lag_source` replaces the replication-lag check; setting `stop` makes the
    workers finish their batch in flight and return (status ``stopped``).

        result = run_backfill(settings, migration_id="0003_email_lower", step=step,
                              workers=4, max_rows_per_second=20_000)
        assert result.done and result.verification.mismatches == 0
    """
    where = where_written(step)
    if workers is not None and workers < 1:
        raise BadInput(f"{where}: workers must be at least 1 (got {workers})")
    merged = {**dict(step.options), **{k: v for k, v in options.items() if v is not None}}
    opts = BackfillOptions.from_mapping(merged, where=where)
    url = settings.require_database()
    started = time.monotonic()
    stop = stop or threading.Event()

    with connect(url) as conn:
        Store(conn, settings.state_schema).ensure_schema()
        table = resolve_table(conn, step)
        key = find_key(conn, table)
        walker = _walker(conn, table, key, step)
        try:
            walker.validate(conn)
        except psycopg.Error as exc:
            raise BadInput(
                f"{where}: the backfill of {table} does not compile: {first_line(exc)}",
                hint="check the set/where expressions against the table's columns",
            ) from None
        claims = Claims(settings.state_schema, migration_id, step.key, "setup", opts.lease_seconds)
        cursor: dict[str, Any] = {"mode": walker.mode, "key": list(key.columns)}
        if isinstance(walker, BlockWalker):
            cursor["end_block"] = walker.end_block
        total, total_is_estimate = row_total(conn, table)
        row = claims.open(
            conn, table_name=table.name, schema_name=table.schema, cursor=cursor,
            rows_total=total, batch_size=opts.batch_size,
        )
        stored = row.cursor
        if stored.get("mode") != walker.mode or stored.get("key") != list(key.columns):
            raise BadInput(
                f"{where}: the backfill of {table} was started walking by "
                f"{stored.get('mode')} {stored.get('key')}, but the table's key is now "
                f"{key.describe()}",
                hint="the key changed between runs; delete its row from "
                f"{settings.state_schema}.backfills to start over",
            )
        if isinstance(walker, BlockWalker) and "end_block" in stored:
            walker.end_block = int(stored["end_block"])
        if workers is None:
            choice = upkeep.choose(conn, url, hint=opts.server_cores, limit=opts.max_workers)
            workers, ceiling, workers_reason = choice.start, choice.ceiling, choice.reason
        else:
            ceiling, workers_reason = workers, f"{workers} worker(s): as asked"
        info = dict(stored.get("info") or {})
        size_before = info.get("table_bytes_before")
        if size_before is None:
            size_before = upkeep.table_bytes(conn, table)
        info.update(workers=workers, workers_reason=workers_reason,
                    table_bytes_before=size_before)
        with conn.transaction():
            claims.merge_info(conn, info)
        verify_seconds = None
        if verify and row.status != "done":
            verify_seconds = upkeep.table_bytes(conn, table) / upkeep.scan_rate(conn, table)

    meter = ProgressMeter(
        reporter, migration_id=migration_id, table=str(table), workers=workers,
        rows_done=row.rows_done, rows_updated=row.rows_updated, rows_total=row.rows_total,
        total_is_estimate=total_is_estimate,
    )
    meter.verify_seconds = verify_seconds
    meter.interval = opts.progress_interval
    status = row.status
    errors: list[BaseException] = []
    vacuumer = upkeep.Vacuumer(
        url, table, every_rows=int((row.rows_total or 0) * opts.vacuum_every_percent / 100),
        cost_delay_ms=opts.vacuum_cost_delay_ms,
    )
    if opts.vacuum_every_percent > 0 and vacuumer.every_rows <= 0:
        vacuumer.every_rows = 50_000  # the table's size is unknown (never analyzed)
    if row.rows_total is not None and row.rows_total < upkeep.SMALL_TABLE_ROWS:
        vacuumer.every_rows = 0  # a small table: the final round is enough
    wal = WalThrottle(
        url if status != "done" else None, max_bytes_per_second=opts.max_wal_bytes_per_second,
        min_checkpoint_seconds=opts.min_checkpoint_seconds, interval=opts.lag_check_interval,
    )
    if status != "done":
        meter.note("start", f"walking by {key.describe()}; {workers_reason}")
        source = lag_source
        if source is None and opts.max_replication_lag > 0:
            source = ReplicaLag(opts.replica_dsn) if opts.replica_dsn else PrimaryLag(url)
        shared = _Shared(
            url=url, settings=settings, migration_id=migration_id, step=step, table=table,
            walker=walker, opts=opts, meter=meter, stop=stop,
            lag=LagThrottle(source, opts.max_replication_lag, opts.lag_check_interval),
            rate=RateLimiter(opts.max_rows_per_second), errors=errors, running=workers,
            vacuumer=vacuumer, wal=wal,
        )
        upkeep_ = _Upkeep(shared, vacuumer, ceiling, auto=options_workers_auto(workers_reason))
        threads = [
            threading.Thread(target=_Worker(shared, i).run, name=f"zdmigrate-backfill-{i}")
            for i in range(ceiling)
        ]
        try:
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                shared.exited.wait(0.05)  # woken at once when a worker returns
                shared.exited.clear()
                if stop.is_set():
                    shared.over.set()  # wakes the workers napping on it
                upkeep_.tick()
            for t in threads:
                t.join()
            upkeep_.wait_vacuum()
        except KeyboardInterrupt:
            # let the batches in flight finish or roll back, then tell the caller
            stop.set()
            for t in threads:
                t.join()
            raise
        finally:
            shared.lag.close()
            wal.finish()
            wal.close()
        if errors:
            stop.set()
            raise errors[0]
        if upkeep_.kept > workers:
            workers_reason += f"; grew to {upkeep_.kept} while that was faster"

    with connect(url) as conn:
        final = claims.read(conn)
        if final is None:
            raise BackfillReset(migration_id)
        verification = None
        last_round = None
        if final.status == "done" and status != "done" and opts.vacuum_every_percent > 0:
            # the last ranges' old versions; sets the visibility map. On its own
            # connection, while this one verifies.
            last_round = threading.Thread(
                target=_final_vacuum, args=(vacuumer, meter), name="zdmigrate-backfill-vacuum"
            )
            last_round.start()
        try:
            if final.status == "done" and verify:
                verification = verify_backfill(conn, step)
        finally:
            if last_round is not None:
                last_round.join()
        size_after = upkeep.table_bytes(conn, table)
        with conn.transaction():
            claims.merge_info(conn, {"table_bytes_after": size_after,
                                     "workers_reason": workers_reason, **wal.summary()})
    if final.status == "done":
        outcome = "done"
    elif final.status == "paused" and not stop.is_set():
        outcome = "paused"
    else:
        outcome = "stopped"
    message = None
    if verification is not None and not verification.ok:
        message = f"{verification.mismatches} row(s) still disagree: {verification.describe_keys()}"
    meter.finish(outcome, final.rows_done, final.rows_updated, message)
    return BackfillResult(
        migration_id=migration_id, step_key=step.key, table=str(table), key=key.describe(),
        status=outcome, rows_done=final.rows_done, rows_updated=final.rows_updated,
        rows_total=final.rows_total, batches=meter.batches,
        elapsed=time.monotonic() - started, verification=verification,
        workers=workers, workers_reason=workers_reason, table_bytes_before=size_before,
        table_bytes_after=size_after, vacuums=vacuumer.rounds, wal=wal.summary(),
    )


def _final_vacuum(vacuumer: upkeep.Vacuumer, meter: ProgressMeter) -> None:
    try:
        vacuumer.run()
    except (psycopg.Error, DatabaseUnreachable) as exc:  # the backfill is done all the same
        reason = exc.message if isinstance(exc, DatabaseUnreachable) else first_line(exc)
        meter.note("vacuum", f"final vacuum of {vacuumer.table} failed: {reason}")


def _walker(
    conn: psycopg.Connection[Any], table: TableRef, key: TableKey, step: BackfillStep
) -> Walker:
    if key.kind == "ctid":
        blocks, per_block = table_blocks(conn, table)
        return BlockWalker(table, step, end_block=blocks, rows_per_block=per_block)
    return KeysetWalker(table, key, step)


@dataclass
class _Shared:
    url: str
    settings: Settings
    migration_id: str
    step: BackfillStep
    table: TableRef
    walker: Walker
    opts: BackfillOptions
    meter: ProgressMeter
    stop: threading.Event
    lag: LagThrottle
    rate: RateLimiter
    errors: list[BaseException]
    #: Workers allowed to claim ranges now (the others park between ranges).
    running: int = 1
    vacuumer: upkeep.Vacuumer | None = None
    wal: WalThrottle | None = None
    pids: dict[int, int] = field(default_factory=dict)
    #: Set when a worker returns of its own accord: the parked ones return as well.
    over: threading.Event = field(default_factory=threading.Event)
    #: Set whenever a worker thread ends (wakes the main thread's loop).
    exited: threading.Event = field(default_factory=threading.Event)


class _Worker:
    def __init__(self, shared: _Shared, index: int) -> None:
        self.s = shared
        self.index = index
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{index}:{uuid.uuid4().hex[:8]}"
        opts = shared.opts
        self.sizer = BatchSizer(
            opts.batch_size, opts.min_batch_size, opts.max_batch_size, opts.target_batch_ms / 1000
        )
        settings = shared.settings
        self.backoff = Backoff.from_settings(settings)

    def run(self) -> None:
        try:
            with connect(self.s.url) as conn:
                self.s.pids[self.index] = conn.info.backend_pid
                try:
                    self._loop(conn)
                    self.s.over.set()  # finished, or paused and not waiting: parked ones go too
                except psycopg.OperationalError as exc:
                    # lost between batches (claiming, waiting): as lost within one
                    if not (conn.closed or conn.broken):
                        raise
                    raise DatabaseUnreachable(
                        f"{where_written(self.s.step)}: the backfill of {self.s.table} lost "
                        f"its database connection: {first_line(exc)}",
                        hint="run the same command again when the database is back: it "
                        "resumes from the saved cursor",
                    ) from None
        except BaseException as exc:  # reported by run_backfill in the main thread
            self.s.errors.append(exc)
            self.s.stop.set()
        finally:
            self.s.exited.set()

    def _loop(self, conn: psycopg.Connection[Any]) -> None:
        s = self.s
        claims = Claims(
            s.settings.state_schema, s.migration_id, s.step.key, self.owner, s.opts.lease_seconds
        )
        while not s.stop.is_set():
            if self.index >= s.running:
                if s.over.is_set():
                    return  # another worker found nothing left to do
                s.over.wait(s.opts.poll_interval)  # parked, between ranges
                continue
            failpoint("backfill.claim.before")
            got = claims.claim(conn, s.walker, self._chunk())
            failpoint("backfill.claim.after")
            if got is ClaimState.FINISHED:
                return
            if got is ClaimState.PAUSED:
                s.meter.note("paused", _paused_message(s), state="operator")
                if not s.opts.wait_when_paused:
                    return
                s.stop.wait(s.opts.poll_interval)
                continue
            s.meter.note("resumed", state="operator")
            if got is ClaimState.WAIT:
                # others hold the last ranges: look again when one of this process's
                # workers returns (the backfill may be over) or after poll_interval
                s.over.wait(s.opts.poll_interval)
                continue
            assert isinstance(got, Claim)
            if got.taken_over:
                s.meter.note("progress", f"took over range {got.range_no} from a dead worker")
            if not self._work(conn, claims, got):
                return

    #: Near the end, ranges shrink down to this many rows (not below).
    SMALLEST_CHUNK = 10_000

    def _chunk(self) -> int:
        """Rows to claim: `chunk_rows`, less near the end (a share of what is left for
        each running worker), so the workers finish together rather than one
        walking the last big range alone."""
        s = self.s
        chunk = s.opts.chunk_rows
        total = s.meter.rows_total
        if total:
            left = max(0, total - s.meter.rows_done)
            chunk = min(chunk, max(left // (2 * max(1, s.running)), self.SMALLEST_CHUNK))
        return max(1, chunk)

    def _work(self, conn: psycopg.Connection[Any], claims: Claims, claim: Claim) -> bool:
        """Batches of one range; False when this worker should stop."""
        s = self.s
        while not s.stop.is_set():
            s.lag.wait(
                s.stop, s.opts.poll_interval,
                on_pause=lambda lag: s.meter.note(
                    "throttled", f"replication lag {lag:.1f}s > {s.opts.max_replication_lag}s",
                    state="lag"),
                on_resume=lambda: s.meter.note("unthrottled", state="lag"),
                keepalive=lambda: claims.heartbeat(conn, claim),
            )
            if s.stop.is_set():
                return False
            if s.wal is not None:
                s.wal.wait(
                    s.stop,
                    on_pause=lambda why: s.meter.note("throttled", why, state="wal"),
                    on_resume=lambda: s.meter.note("unthrottled", state="wal"),
                    keepalive=lambda: claims.heartbeat(conn, claim),
                )
                if s.stop.is_set():
                    return False
            batch = self.sizer.size
            if s.vacuumer is not None and s.vacuumer.behind(s.meter.rows_done, batch):
                s.meter.note("throttled", "waiting for a VACUUM round to catch up",
                             state="vacuum")
                while s.vacuumer.behind(s.meter.rows_done, batch) and not s.stop.is_set():
                    s.stop.wait(0.05)
                s.meter.note("unthrottled", state="vacuum")
                continue
            size = self.sizer.size
            began = time.monotonic()
            try:
                with conn.transaction():
                    # synchronous_commit off: the batch's commit does not wait for its
                    # WAL flush, so it never queues with the app's commits on it. Safe:
                    # a batch and its cursor commit together, so a crash that loses
                    # the last commits loses their cursors too and a rerun redoes them.
                    conn.execute(
                        "SELECT set_config('lock_timeout', %s, true), "
                        "set_config('statement_timeout', %s, true), "
                        "set_config('synchronous_commit', %s, true)",
                        [f"{int(s.opts.lock_timeout_ms)}ms", f"{int(s.opts.statement_timeout_ms)}ms",
                         s.opts.synchronous_commit],
                    )
                    failpoint("backfill.fence.before")
                    claims.fence(conn, claim)
                    failpoint("backfill.fence.after")
                    outcome = s.walker.batch(conn, claim.cursor, claim.upper, size)
                    failpoint("backfill.batch.before_cursor")
                    totals = claims.save_batch(conn, claim, outcome)
                failpoint("backfill.batch.after_commit")
            except RangeLost:
                s.meter.note("range-lost", f"range {claim.range_no} was taken over")
                return True
            except psycopg.Error as exc:
                if exc.sqlstate in BATCH_RETRY_SQLSTATES:
                    self._back_off(exc, claim)
                    continue
                if isinstance(exc, psycopg.OperationalError) and (conn.closed or conn.broken):
                    raise DatabaseUnreachable(
                        f"{where_written(s.step)}: the backfill of {s.table} lost its database "
                        f"connection: {first_line(exc)}",
                        hint="nothing of the batch in flight was applied; run the same command "
                        "again when the database is back: it resumes from the saved cursor",
                    ) from None
                raise _batch_failed(s, claim, exc) from None
            self.backoff.succeeded()
            self.sizer.observe(outcome.scanned, time.monotonic() - began)
            claim.cursor = outcome.end
            if outcome.scanned:
                s.meter.batch(totals.rows_done, totals.rows_updated, totals.rows_total, size)
            s.rate.pace(outcome.scanned, s.stop)
            if totals.status == "paused" and not self._wait_resumed(conn, claims, claim, totals):
                return False
            if outcome.range_done:
                return True
        return False

    def _back_off(self, exc: psycopg.Error, claim: Claim) -> None:
        s = self.s
        size = self.sizer.shrink()
        delay = self.backoff.failed()
        what = transient_reason(exc.sqlstate) or "transient error"
        if delay is None:
            raise LockRetriesExhausted(
                f"{where_written(s.step)}: backfill of {s.table} kept failing with {what} "
                f"for more than {s.settings.retry_budget:g}s",
                hint="progress is saved; run `zdmigrate backfill` again later",
            )
        s.meter.note("lock-timeout", f"{what}; retrying with batch size {size} in {delay:.2f}s")
        s.stop.wait(delay)

    def _wait_resumed(
        self, conn: psycopg.Connection[Any], claims: Claims, claim: Claim, totals: Totals
    ) -> bool:
        s = self.s
        s.meter.note("paused", _paused_message(s), state="operator")
        if not s.opts.wait_when_paused:
            return False
        while not s.stop.is_set():
            claims.heartbeat(conn, claim)
            if claims.status(conn) != "paused":
                s.meter.note("resumed", state="operator")
                return True
            s.stop.wait(s.opts.poll_interval)
        return False


def _paused_message(s: _Shared) -> str:
    how = ("waiting until it is resumed" if s.opts.wait_when_paused
           else "stopping here")
    return (f"paused by an operator, {how}: `zdmigrate backfill {s.migration_id} --resume` "
            "resumes it")


def _batch_failed(s: _Shared, claim: Claim, exc: psycopg.Error) -> StepFailed:
    cursor = key_text(claim.cursor) if isinstance(claim.cursor, list) else claim.cursor
    return StepFailed(
        f"{where_written(s.step)}: backfill batch of {s.table} after key {cursor} "
        f"failed: {first_line(exc)}",
        hint="nothing of this batch was applied; fix the cause and run again",
    )


def options_workers_auto(reason: str) -> bool:
    return not reason.endswith("as asked")


class _Upkeep:
    """The main thread's chores while workers run: progress at a regular interval,
    the throttled VACUUM rounds (in a thread of their own), and, for workers the
    backfill chose, a governor: it parks one while app writes wait on its locks
    (the WAL throttle paces the workers by itself: parking one as well would
    slow them below the WAL rate it allows), and after a quiet while tries one more (up to the server's cores), kept only
    if the backfill got at least `GAIN` times faster with it; a failed try waits
    twice as long before the next."""

    CHECK = 2.0  # seconds between looks at the app's lock waits
    QUIET = 4.0  # seconds without lock waits before one more worker is tried
    QUIET_MAX = 60.0  # the wait before another try, doubled after each failed one
    PROBE = 4.0  # seconds a tried worker runs before it is judged
    GAIN = 1.1  # kept if rows/s grew by this factor

    def __init__(self, shared: _Shared, vacuumer: upkeep.Vacuumer, workers: int, *, auto: bool):
        self.s = shared
        self.vacuumer = vacuumer
        self.chosen = workers
        self.auto = auto
        self._vacuum: threading.Thread | None = None
        self._checked = time.monotonic()
        self._calm_since = time.monotonic()
        self._conn: psycopg.Connection[Any] | None = None
        self._quiet = self.QUIET
        #: (when, rows/s before, workers) of the worker being tried
        self._probe: tuple[float, float, int] | None = None
        self._history: deque[tuple[float, int]] = deque()
        self._wal_held = 0.0
        #: The most workers that ran (for the result and `status`).
        self.kept = shared.running

    def tick(self) -> None:
        s = self.s
        s.meter.tick()
        if self._vacuum is None or not self._vacuum.is_alive():
            rows = s.meter.rows_done
            if self.vacuumer.due(rows):
                self._vacuum = threading.Thread(
                    target=self._vacuum_round, args=(rows,), name="zdmigrate-backfill-vacuum"
                )
                self._vacuum.start()
        if self.auto and self.chosen > 1 and time.monotonic() - self._checked >= self.CHECK:
            self._checked = time.monotonic()
            self._govern()

    def _vacuum_round(self, rows: int) -> None:
        try:
            if self.vacuumer.maybe(rows, lambda: self.s.meter.rows_done):
                self.s.meter.note("vacuum", f"vacuumed {self.s.table} ({self.vacuumer.rounds})")
        except (psycopg.Error, DatabaseUnreachable) as exc:  # not fatal: the next one tries
            reason = exc.message if isinstance(exc, DatabaseUnreachable) else first_line(exc)
            self.s.meter.note("vacuum", f"vacuum of {self.s.table} failed: {reason}")

    def _govern(self) -> None:
        s = self.s
        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(s.url)
            waits = upkeep.lock_waits_on(self._conn, list(s.pids.values()))
        except (psycopg.Error, DatabaseUnreachable):
            return
        now = time.monotonic()
        rate = self._rate(now)
        held = s.wal.throttled_seconds if s.wal is not None else 0.0
        wal_held, self._wal_held = held > self._wal_held, held
        if self._probe is not None and (waits or now - self._probe[0] >= self.PROBE * 0.99):
            self._judge_probe(now, rate, waits)
        if waits and s.running > 1:
            s.running -= 1
            self._calm_since = now
            self._probe = None
            s.meter.note("workers", f"{s.running} worker(s): {waits} app backend(s) waited "
                         "on the backfill's row locks")
        elif waits or wal_held:  # no worker more while the WAL throttle holds them
            self._calm_since = now
        elif (s.running < self.chosen and self._probe is None and rate is not None
              and now - self._calm_since >= self._quiet):
            # try one more: kept if the backfill gets faster and the app does not wait
            s.running += 1
            self._calm_since = now
            self._probe = (now, rate, s.running)
            s.meter.note("workers", f"{s.running} worker(s): trying one more (no app lock "
                         f"waits for {self._quiet:g}s, {rate:,.0f} rows/s with {s.running - 1})")

    def _judge_probe(self, now: float, rate: float | None, waits: int | bool) -> None:
        s = self.s
        assert self._probe is not None
        _, before, count = self._probe
        self._probe = None
        if waits or s.running != count:
            return  # the lock waits decide
        if rate is not None and rate >= before * self.GAIN:
            self._quiet = self.QUIET
            self.kept = max(self.kept, count)
            s.meter.note("workers", f"{count} worker(s): {rate:,.0f} rows/s against "
                         f"{before:,.0f} with {count - 1}")
            return
        s.running -= 1
        self._calm_since = now
        self._quiet = min(self._quiet * 2, self.QUIET_MAX)
        got = "no rate" if rate is None else f"{rate:,.0f} rows/s"
        s.meter.note("workers", f"{s.running} worker(s): {count} were not faster ({got} "
                     f"against {before:,.0f}); next try in {self._quiet:g}s")

    def _rate(self, now: float) -> float | None:
        """Rows/s over the last `PROBE` seconds (None until there is that much history)."""
        rows = self.s.meter.rows_done
        self._history.append((now, rows))
        while len(self._history) > 2 and now - self._history[1][0] >= self.PROBE:
            self._history.popleft()
        then, before = self._history[0]
        if now - then < self.PROBE * 0.75:
            return None
        return (rows - before) / (now - then)

    def wait_vacuum(self) -> None:
        if self._vacuum is not None:
            self._vacuum.join()
        if self._conn is not None:
            self._conn.close()
