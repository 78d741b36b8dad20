"""Workers claim disjoint key ranges of a backfill through zdmigrate's state tables.

One ``backfills`` row per backfill step holds the *frontier*: where the
unclaimed part of the table begins. A worker carves the next range off the
frontier (under a row lock on that row), or takes over a range whose worker is
gone (its connection no longer in ``pg_stat_activity``) or silent for longer than
the lease, with ``FOR UPDATE SKIP LOCKED`` so claimers never wait on each other.
Workers in several processes on several machines cooperate this way.

Each batch transaction first locks its range row and checks that this worker
still owns it (a fence: a worker thought dead that wakes up cannot apply a batch
over its successor), and saves the range's cursor and counts before committing:
a batch and its cursor commit together or not at all.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from zdmigrate.backfill.walkers import BatchOutcome, Position, Walker


class ClaimState(enum.Enum):
    PAUSED = "paused"  # an operator paused the backfill
    WAIT = "wait"  # nothing to claim, but others still hold ranges
    FINISHED = "finished"  # every range is done


@dataclass
class Claim:
    range_no: int
    lower: Position
    upper: Position
    cursor: Position
    taken_over: bool = False


@dataclass(frozen=True)
class Totals:
    """The backfill's counts across every worker, as of a batch's commit."""

    rows_done: int
    rows_updated: int
    rows_total: int | None
    status: str


class RangeLost(Exception):
    """This worker's range was taken over (it was thought dead); drop it."""


@dataclass(frozen=True)
class BackfillRow:
    status: str
    cursor: dict[str, Any]
    rows_done: int
    rows_updated: int
    rows_total: int | None


class Claims:
    """Claims of one worker (one connection) on one backfill step."""

    def __init__(
        self, state_schema: str, migration_id: str, step_key: str, owner: str, lease: float
    ) -> None:
        self.migration_id = migration_id
        self.step_key = step_key
        self.owner = owner
        self.lease = lease
        self._backfills = sql.Identifier(state_schema, "backfills")
        self._ranges = sql.Identifier(state_schema, "backfill_ranges")
        self._ids = [migration_id, step_key]

    # -- the backfill row -------------------------------------------------------

    def open(
        self, conn: psycopg.Connection[Any], *, table_name: str, schema_name: str,
        cursor: dict[str, Any], rows_total: int | None, batch_size: int,
    ) -> BackfillRow:
        """Create the backfill's row if this is its first run; return it as stored."""
        with conn.transaction():
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} AS b (migration_id, step_key, table_name, schema_name, status, "
                    "cursor, rows_total, batch_size) VALUES (%s, %s, %s, %s, 'running', %s, %s, %s) "
                    "ON CONFLICT (migration_id, step_key) DO UPDATE SET "
                    "rows_total = CASE WHEN b.status = 'done' THEN b.rows_total "
                    "ELSE excluded.rows_total END, "
                    # a row created by `--pause` before the first run has no cursor yet
                    "cursor = CASE WHEN b.cursor ? 'mode' THEN b.cursor ELSE excluded.cursor END"
                ).format(self._backfills),
                [*self._ids, table_name, schema_name, Jsonb(cursor), rows_total, batch_size],
            )
            row = self.read(conn)
        assert row is not None
        return row

    def read(self, conn: psycopg.Connection[Any]) -> BackfillRow | None:
        row = conn.execute(
            sql.SQL(
                "SELECT status, cursor, rows_done, rows_updated, rows_total FROM {} "
                "WHERE migration_id = %s AND step_key = %s"
            ).format(self._backfills),
            self._ids,
        ).fetchone()
        if row is None:
            return None
        return BackfillRow(row[0], dict(row[1] or {}), int(row[2]), int(row[3]), row[4])

    def set_batch_size(self, conn: psycopg.Connection[Any], size: int) -> None:
        conn.execute(
            sql.SQL("UPDATE {} SET batch_size = %s WHERE migration_id = %s AND step_key = %s")
            .format(self._backfills),
            [size, *self._ids],
        )

    # -- claiming ---------------------------------------------------------------

    def claim(
        self, conn: psycopg.Connection[Any], walker: Walker, chunk_rows: int
    ) -> Claim | ClaimState:
        """A range to work on, or why there is none right now."""
        with conn.transaction():
            current = self.read(conn)
            if current is None or current.status == "done":
                return ClaimState.FINISHED
            if current.status == "paused":
                return ClaimState.PAUSED
            taken = self._take_over(conn)
            if taken is not None:
                return taken
            row = conn.execute(
                sql.SQL(
                    "SELECT cursor FROM {} WHERE migration_id = %s AND step_key = %s FOR UPDATE"
                ).format(self._backfills),
                self._ids,
            ).fetchone()
            assert row is not None
            cursor = dict(row[0] or {})
            if not cursor.get("exhausted"):
                frontier = cursor.get("frontier")
                upper, last = walker.carve(conn, frontier, chunk_rows)
                number = conn.execute(
                    sql.SQL(
                        "SELECT coalesce(max(range_no), 0) + 1 FROM {} "
                        "WHERE migration_id = %s AND step_key = %s"
                    ).format(self._ranges),
                    self._ids,
                ).fetchone()
                assert number is not None
                range_no = int(number[0])
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (migration_id, step_key, range_no, lower_key, upper_key, "
                        "cursor, owner, owner_pid, owner_started) VALUES (%s, %s, %s, %s, %s, %s, "
                        "%s, pg_backend_pid(), (SELECT backend_start FROM pg_stat_activity "
                        "WHERE pid = pg_backend_pid()))"
                    ).format(self._ranges),
                    [*self._ids, range_no, Jsonb(frontier), Jsonb(upper), Jsonb(frontier),
                     self.owner],
                )
                cursor.update(frontier=upper, exhausted=last)
                conn.execute(
                    sql.SQL(
                        "UPDATE {} SET cursor = %s, updated_at = now() "
                        "WHERE migration_id = %s AND step_key = %s"
                    ).format(self._backfills),
                    [Jsonb(cursor), *self._ids],
                )
                return Claim(range_no, frontier, upper, frontier)
            left = conn.execute(
                sql.SQL(
                    "SELECT count(*) FROM {} WHERE migration_id = %s AND step_key = %s "
                    "AND status = 'claimed'"
                ).format(self._ranges),
                self._ids,
            ).fetchone()
            if left and left[0]:
                return ClaimState.WAIT
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET status = 'done', finished_at = now(), updated_at = now(), "
                    "rows_total = rows_done WHERE migration_id = %s AND step_key = %s"
                ).format(self._backfills),
                self._ids,
            )
            return ClaimState.FINISHED

    def _take_over(self, conn: psycopg.Connection[Any]) -> Claim | None:
        row = conn.execute(
            sql.SQL(
                """
                SELECT r.range_no, r.lower_key, r.upper_key, r.cursor FROM {} r
                WHERE r.migration_id = %s AND r.step_key = %s AND r.status = 'claimed'
                  AND (r.heartbeat < now() - make_interval(secs => %s)
                       OR NOT EXISTS (
                           SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.owner_pid
                           AND (a.backend_start IS NULL OR r.owner_started IS NULL
                                OR a.backend_start = r.owner_started)))
                ORDER BY r.range_no LIMIT 1 FOR UPDATE OF r SKIP LOCKED
                """
            ).format(self._ranges),
            [*self._ids, self.lease],
        ).fetchone()
        if row is None:
            return None
        conn.execute(
            sql.SQL(
                "UPDATE {} SET owner = %s, owner_pid = pg_backend_pid(), owner_started = "
                "(SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()), "
                "heartbeat = now() WHERE migration_id = %s AND step_key = %s AND range_no = %s"
            ).format(self._ranges),
            [self.owner, *self._ids, row[0]],
        )
        return Claim(int(row[0]), row[1], row[2], row[3], taken_over=True)

    # -- inside a batch transaction ---------------------------------------------

    def fence(self, conn: psycopg.Connection[Any], claim: Claim) -> None:
        """Lock the range row; raise RangeLost if another worker owns it now."""
        row = conn.execute(
            sql.SQL(
                "SELECT owner FROM {} WHERE migration_id = %s AND step_key = %s "
                "AND range_no = %s FOR UPDATE"
            ).format(self._ranges),
            [*self._ids, claim.range_no],
        ).fetchone()
        if row is None or row[0] != self.owner:
            raise RangeLost(claim.range_no)

    def save_batch(
        self, conn: psycopg.Connection[Any], claim: Claim, outcome: BatchOutcome
    ) -> Totals:
        """Record the batch's cursor and counts; the last statement of its transaction."""
        conn.execute(
            sql.SQL(
                "UPDATE {} SET cursor = %s, rows_done = rows_done + %s, "
                "rows_updated = rows_updated + %s, batches = batches + 1, heartbeat = now(), "
                "status = CASE WHEN %s THEN 'done' ELSE status END "
                "WHERE migration_id = %s AND step_key = %s AND range_no = %s"
            ).format(self._ranges),
            [Jsonb(outcome.end), outcome.scanned, outcome.updated, outcome.range_done,
             *self._ids, claim.range_no],
        )
        row = conn.execute(
            sql.SQL(
                "UPDATE {} SET rows_done = rows_done + %s, rows_updated = rows_updated + %s, "
                "updated_at = now() WHERE migration_id = %s AND step_key = %s "
                "RETURNING rows_done, rows_updated, rows_total, status"
            ).format(self._backfills),
            [outcome.scanned, outcome.updated, *self._ids],
        ).fetchone()
        assert row is not None
        return Totals(int(row[0]), int(row[1]), row[2], str(row[3]))

    def heartbeat(self, conn: psycopg.Connection[Any], claim: Claim) -> None:
        """Tell other workers this range's worker is alive (while it waits)."""
        conn.execute(
            sql.SQL(
                "UPDATE {} SET heartbeat = now() WHERE migration_id = %s AND step_key = %s "
                "AND range_no = %s AND owner = %s"
            ).format(self._ranges),
            [*self._ids, claim.range_no, self.owner],
        )

    def status(self, conn: psycopg.Connection[Any]) -> str:
        row = self.read(conn)
        return row.status if row else "done"
