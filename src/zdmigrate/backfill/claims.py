"""Workers claim disjoint key ranges of a backfill through zdmigrate's state tables.

One ``backfills`` row per backfill step holds the *frontier*: where the
unclaimed part of the table begins. A worker carves the next range off the
frontier (under a row lock on that row), or takes over a range whose worker is
gone (its connection no longer in ``pg_stat_activity``) or silent for longer than
the lease, with ``FOR UPDATE SKIP LOCKED`` so claimers never wait on each other.
Workers in several processes on several machines cooperate this way. The rows
are read and written through `zdmigrate.state.Store`.

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

from zdmigrate.backfill.walkers import BatchOutcome, Position, Walker
from zdmigrate.errors import OperationalError
from zdmigrate.state import BackfillRow, Store, Totals


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


class RangeLost(Exception):
    """This worker's range was taken over (it was thought dead); drop it."""


class BackfillReset(OperationalError):
    """The backfill's row is gone while it ran: a rollback reset its progress."""

    def __init__(self, migration_id: str) -> None:
        super().__init__(
            f"the backfill of {migration_id} was reset while it ran (a rollback below "
            "backfill forgot its progress); this worker stopped and wrote nothing more",
            hint="advance the migration again; its backfill starts from the top",
        )


__all__ = ["BackfillReset", "BackfillRow", "Claim", "ClaimState", "Claims", "RangeLost", "Totals"]


class Claims:
    """Claims of one worker (one connection) on one backfill step."""

    def __init__(
        self, state_schema: str, migration_id: str, step_key: str, owner: str, lease: float
    ) -> None:
        self.migration_id = migration_id
        self.step_key = step_key
        self.owner = owner
        self.lease = lease
        self._schema = state_schema
        self._ids = (migration_id, step_key)

    def _store(self, conn: psycopg.Connection[Any]) -> Store:
        return Store(conn, self._schema)

    # -- the backfill row -------------------------------------------------------

    def open(
        self, conn: psycopg.Connection[Any], *, table_name: str, schema_name: str,
        cursor: dict[str, Any], rows_total: int | None, batch_size: int,
    ) -> BackfillRow:
        """Create the backfill's row if this is its first run; return it as stored."""
        with conn.transaction():
            self._store(conn).backfills.open(
                *self._ids, table_name=table_name, schema_name=schema_name,
                cursor=cursor, rows_total=rows_total, batch_size=batch_size,
            )
            row = self.read(conn)
        assert row is not None
        return row

    def read(self, conn: psycopg.Connection[Any]) -> BackfillRow | None:
        return self._store(conn).backfills.read(*self._ids)

    def merge_info(self, conn: psycopg.Connection[Any], info: dict[str, Any]) -> None:
        """Record what this run chose and why, and the table's sizes (shown by `status`)."""
        self._store(conn).backfills.merge_info(*self._ids, info)

    def set_batch_size(self, conn: psycopg.Connection[Any], size: int) -> None:
        self._store(conn).backfills.set_batch_size(*self._ids, size)

    # -- claiming ---------------------------------------------------------------

    def claim(
        self, conn: psycopg.Connection[Any], walker: Walker, chunk_rows: int
    ) -> Claim | ClaimState:
        """A range to work on, or why there is none right now."""
        with conn.transaction():
            current = self.read(conn)
            if current is None:
                raise BackfillReset(self.migration_id)
            if current.status == "done":
                return ClaimState.FINISHED
            if current.status == "paused":
                return ClaimState.PAUSED
            taken = self._take_over(conn)
            if taken is not None:
                return taken
            rows = self._store(conn).backfills
            cursor = rows.lock_frontier(*self._ids)
            if cursor is None:  # deleted since it was read: a rollback committed meanwhile
                raise BackfillReset(self.migration_id)
            if not cursor.get("exhausted"):
                frontier = cursor.get("frontier")
                upper, last = walker.carve(conn, frontier, chunk_rows)
                range_no = rows.add_range(*self._ids, lower=frontier, upper=upper, owner=self.owner)
                cursor.update(frontier=upper, exhausted=last)
                rows.set_frontier(*self._ids, cursor)
                return Claim(range_no, frontier, upper, frontier)
            if rows.claimed_ranges(*self._ids):
                return ClaimState.WAIT
            rows.finish(*self._ids)
            return ClaimState.FINISHED

    def _take_over(self, conn: psycopg.Connection[Any]) -> Claim | None:
        row = self._store(conn).backfills.take_over_range(*self._ids, owner=self.owner, lease=self.lease)
        if row is None:
            return None
        return Claim(row.range_no, row.lower, row.upper, row.cursor, taken_over=True)

    # -- inside a batch transaction ---------------------------------------------

    def fence(self, conn: psycopg.Connection[Any], claim: Claim) -> None:
        """Lock the range row; raise RangeLost if another worker owns it now."""
        if self._store(conn).backfills.lock_range_owner(*self._ids, claim.range_no) != self.owner:
            raise RangeLost(claim.range_no)

    def save_batch(
        self, conn: psycopg.Connection[Any], claim: Claim, outcome: BatchOutcome
    ) -> Totals:
        """Record the batch's cursor and counts; the last statement of its transaction."""
        return self._store(conn).backfills.save_batch(
            *self._ids, claim.range_no, cursor=outcome.end, scanned=outcome.scanned,
            updated=outcome.updated, range_done=outcome.range_done,
        )

    def heartbeat(self, conn: psycopg.Connection[Any], claim: Claim) -> None:
        """Tell other workers this range's worker is alive (while it waits)."""
        self._store(conn).backfills.range_heartbeat(*self._ids, claim.range_no, self.owner)

    def status(self, conn: psycopg.Connection[Any]) -> str:
        row = self.read(conn)
        return row.status if row else "done"
