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
            workers, workers_reason = upkeep.choose_workers(
                conn, url, hint=opts.server_cores, limit=opts.max_workers
            )
        else:
            workers_reason = f"{workers} worker(s): as asked"
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
            vacuumer=vacuumer,
        )
        upkeep_ = _Upkeep(shared, vacuumer, workers, auto=options_workers_auto(workers_reason))
        threads = [
            threading.Thread(target=_Worker(shared, i).run, name=f"zdmigrate-backfill-{i}")
            for i in range(workers)
        ]
        try:
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.05)
                    upkeep_.tick()
            upkeep_.wait_vacuum()
        except KeyboardInterrupt:
            # let the batches in flight finish or roll back, then tell the caller
            stop.set()
            for t in threads:
                t.join()
            raise
        finally:
            shared.lag.close()
        if errors:
            stop.set()
            raise errors[0]

    with connect(url) as conn:
        final = claims.read(conn)
        if final is None:
            raise BackfillReset(migration_id)
        verification = None
        if final.status == "done" and status != "done" and opts.vacuum_every_percent > 0:
            try:  # the last ranges' old versions; sets the visibility map
                vacuumer.run()
            except psycopg.Error as exc:  # the backfill is done all the same
                meter.note("vacuum", f"final vacuum of {table} failed: {first_line(exc)}")
        if final.status == "done" and verify:
            verification = verify_backfill(conn, step)
        size_after = upkeep.table_bytes(conn, table)
        with conn.transaction():
            claims.merge_info(conn, {"table_bytes_after": size_after})
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
        table_bytes_after=size_after, vacuums=vacuumer.rounds,
    )


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
    pids: dict[int, int] = field(default_factory=dict)


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

    def _loop(self, conn: psycopg.Connection[Any]) -> None:
        s = self.s
        claims = Claims(
            s.settings.state_schema, s.migration_id, s.step.key, self.owner, s.opts.lease_seconds
        )
        while not s.stop.is_set():
            if self.index >= s.running:
                s.stop.wait(s.opts.poll_interval)  # parked, between ranges
                continue
            failpoint("backfill.claim.before")
            got = claims.claim(conn, s.walker, s.opts.chunk_rows)
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
                s.stop.wait(s.opts.poll_interval)
                continue
            assert isinstance(got, Claim)
            if got.taken_over:
                s.meter.note("progress", f"took over range {got.range_no} from a dead worker")
            if not self._work(conn, claims, got):
                return

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
            if s.vacuumer is not None and s.vacuumer.behind(s.meter.rows_done):
                s.meter.note("throttled", "waiting for a VACUUM round to catch up",
                             state="vacuum")
                while s.vacuumer.behind(s.meter.rows_done) and not s.stop.is_set():
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
    backfill chose, parking one while app writes wait on its locks and bringing it
    back after a quiet while."""

    CHECK = 2.0  # seconds between looks at the app's lock waits
    QUIET = 20.0  # seconds without lock waits before a parked worker comes back

    def __init__(self, shared: _Shared, vacuumer: upkeep.Vacuumer, workers: int, *, auto: bool):
        self.s = shared
        self.vacuumer = vacuumer
        self.chosen = workers
        self.auto = auto
        self._vacuum: threading.Thread | None = None
        self._checked = time.monotonic()
        self._calm_since = time.monotonic()
        self._conn: psycopg.Connection[Any] | None = None

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
            if self.vacuumer.maybe(rows):
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
        if waits and s.running > 1:
            s.running -= 1
            self._calm_since = now
            s.meter.note("workers", f"{s.running} worker(s): {waits} app backend(s) waited "
                         "on the backfill's row locks")
        elif waits:
            self._calm_since = now
        elif s.running < self.chosen and now - self._calm_since >= self.QUIET:
            s.running += 1
            self._calm_since = now
            s.meter.note("workers", f"{s.running} worker(s): no app lock waits for "
                         f"{self.QUIET:g}s")

    def wait_vacuum(self) -> None:
        if self._vacuum is not None:
            self._vacuum.join()
        if self._conn is not None:
            self._conn.close()
