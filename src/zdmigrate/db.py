"""Connections and safe execution of SQL steps: lock timeouts, retries, autocommit steps.

Warning: every transactional step runs in a short transaction of its own with
``SET LOCAL lock_timeout`` (default 2 s), so a DDL statement waiting for an
ACCESS EXCLUSIVE lock never makes application queries queue behind it for longer
than that. On SQLSTATE 55P03 (lock_not_available) the step is rolled back and
retried with exponential backoff and jitter until the retry budget is spent.
CONCURRENTLY statements run outside a transaction; an INVALID index left by a
failed build is dropped before the retry.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg import sql

from zdmigrate.config import Settings, redact_url
from zdmigrate.data_problems import DATA_ERRORS, diagnose
from zdmigrate.dsn import normalize_url as normalize_url  # re-exported: one home, in dsn
from zdmigrate.dsn import scrub
from zdmigrate.errors import (
    BadInput,
    DatabaseUnreachable,
    LockRetriesExhausted,
    StepFailed,
    first_line,
)
from zdmigrate.steps import GeneratedSQLStep, SQLStep, needs_autocommit

Log = Callable[[str], None]
Record = Callable[[psycopg.Connection[Any]], None]


def connect(
    target: Settings | str,
    *,
    application_name: str = "zdmigrate",
    autocommit: bool = True,
    prepare_threshold: int | None = 5,
    session: Mapping[str, str] | None = None,
) -> psycopg.Connection[Any]:
    """A psycopg connection to the target database; exit 3 (with no password shown) if down.

    The one door to the database for the CLI and the backfill. `target` is the
    settings (their database URL) or a URL. `prepare_threshold=None` turns off
    server-side prepared statements (for transaction poolers); `session` sets
    session parameters right after connecting (``{"DateStyle": "ISO, YMD"}``).
    """
    url = target if isinstance(target, str) else target.require_database()
    try:
        conn = psycopg.connect(
            normalize_url(url), autocommit=autocommit, application_name=application_name,
            connect_timeout=10, prepare_threshold=prepare_threshold,
        )
    except psycopg.Error as exc:
        raise DatabaseUnreachable(
            f"cannot connect to {redact_url(url)}: {scrub(first_line(exc), url)}"
        ) from None
    if session:  # one round trip for all of them
        calls = sql.SQL(", ").join([sql.SQL("set_config(%s, %s, false)")] * len(session))
        conn.execute(sql.SQL("SELECT ") + calls, [v for item in session.items() for v in item])
    notice_gone_client(conn)
    return conn


#: How often a zdmigrate backend checks, while a statement runs, that its client is there.
CLIENT_CHECK_INTERVAL = "1s"


def notice_gone_client(conn: psycopg.Connection[Any]) -> None:
    """Have the backend end its running statement once this client is gone (PostgreSQL 14+).

    A killed zdmigrate process leaves its backend running the current statement
    (a CONCURRENTLY build waiting for old snapshots, a long VALIDATE), still
    holding the run lock and a backfill claim. With ``client_connection_check_interval``
    the backend polls its socket every second while a statement runs and, once
    the kernel says the client closed it, ends the statement and the session,
    as a cancel would: every step is safe to cancel (a transactional one rolls
    back, a CONCURRENTLY build leaves an INVALID index the rerun drops). Older
    servers, and platforms without the check, keep the old behaviour.
    """
    if server_major(conn) < 14:
        return
    try:
        conn.execute("SELECT set_config('client_connection_check_interval', %s, false)",
                     [CLIENT_CHECK_INTERVAL])
        if not conn.autocommit:
            conn.commit()  # a setting made in a transaction that rolls back is undone
    except psycopg.Error:
        if not conn.autocommit:
            conn.rollback()


def server_major(conn: psycopg.Connection[Any]) -> int:
    """The PostgreSQL major version of the server `conn` talks to (150004 -> 15)."""
    return int(conn.info.server_version) // 10000


class Backoff:
    """Exponential backoff with full jitter, within a time budget: the one backoff.

    The n-th wait is uniform in ``[0, min(cap, base * 2**n)]`` (the documented
    ``retry_backoff``, doubling each try up to ``retry_backoff_max``, full jitter);
    `failed()` returns None once `budget` seconds have passed since the first
    failure of the current streak. Used by the DDL executor and the backfill.
    """

    def __init__(self, base: float, cap: float, budget: float) -> None:
        self.base = base
        self.cap = cap
        self.budget = budget
        self.tries = 0
        self.since: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Backoff:
        return cls(settings.retry_backoff, settings.retry_backoff_max, settings.retry_budget)

    def delay(self, attempt: int) -> float:
        """A wait before retry number `attempt` + 1 (0-based), full jitter."""
        return random.uniform(0, min(self.cap, self.base * 2**attempt))

    def failed(self) -> float | None:
        """Seconds to sleep before retrying, or None when the budget is spent."""
        now = time.monotonic()
        if self.since is None:
            self.since = now
        if now - self.since > self.budget:
            return None
        delay = self.delay(self.tries)
        self.tries += 1
        return delay

    def succeeded(self) -> None:
        self.tries = 0
        self.since = None


def execute_step(
    conn: psycopg.Connection[Any],
    step: SQLStep,
    settings: Settings,
    *,
    record: Record | None = None,
    log: Log = lambda message: None,
) -> None:
    """Run one SQL step safely; `record(conn)` runs in the step's own transaction.

    The connection must be in autocommit mode (no transaction open). Raises
    LockRetriesExhausted (exit 3) when the retry budget runs out, with nothing of
    the step applied; StepFailed for any other database error.
    """
    backoff = Backoff.from_settings(settings)
    started = time.monotonic()
    attempt = 0
    while True:
        # a CONCURRENTLY step queues no application query behind it (it takes SHARE UPDATE
        # EXCLUSIVE), and lock_timeout also ends its waits for older snapshots, throwing the
        # build away: it gets the whole lock_timeout from the first try
        wait = (settings.lock_timeout if step.autocommit
                else attempt_lock_timeout(settings.lock_timeout, attempt))
        try:
            if step.autocommit:
                _run_autocommit(conn, step, settings, record, wait)
            else:
                _run_in_transaction(conn, step, settings, record, wait)
            return
        except psycopg.errors.LockNotAvailable:
            elapsed = time.monotonic() - started
            if elapsed >= backoff.budget:
                raise LockRetriesExhausted(
                    f"{_where(step)}gave up after {attempt + 1} tries in {elapsed:.1f}s: "
                    f"could not get the lock within lock_timeout (up to {settings.lock_timeout:g}s)",
                    hint="a long transaction holds a lock on the table; end it and run again "
                    "(nothing of this step was applied; done steps are kept)",
                ) from None
            delay = min(backoff.delay(attempt), max(0.0, backoff.budget - elapsed) + 0.05)
            attempt += 1
            log(
                f"lock_timeout on {_short(step.sql)!r} after waiting {wait * 1000:.0f}ms: "
                f"retry {attempt} in {delay:.2f}s "
                f"({elapsed:.1f}s of the {backoff.budget:g}s retry budget used)"
            )
            time.sleep(delay)
        except psycopg.OperationalError as exc:
            if conn.closed or conn.broken:
                raise DatabaseUnreachable(
                    f"{_where(step)}lost the database connection: {first_line(exc)}",
                    hint="run the same command again; done steps are kept",
                ) from None
            raise StepFailed(f"{_where(step)}{_describe(exc)}") from None
        except psycopg.ProgrammingError as exc:
            if exc.sqlstate is None:
                # refused by the driver before it reached the server: the step is malformed
                raise BadInput(
                    f"{_where(step)}{first_line(exc)} (nothing of this step was sent)"
                ) from None
            raise StepFailed(
                f"{_where(step)}{_describe(exc)}\n  statement: {_short(step.sql, 300)}"
            ) from None
        except DATA_ERRORS as exc:  # the data stops the step: exit 2 with the rows, not 3
            raise diagnose(conn, exc, _where(step), step.sql, concurrent=step.autocommit) from None
        except psycopg.Error as exc:
            raise StepFailed(
                f"{_where(step)}{_describe(exc)}\n  statement: {_short(step.sql, 300)}"
            ) from None


#: The first attempt of a step waits this long for its lock; each retry doubles it, up to
#: lock_timeout. Application queries queue behind a waiting ACCESS EXCLUSIVE request, so
#: a short first wait keeps their latency low when no blocker is there (the usual case)
#: and a blocker that stays is met with longer waits, within the retry budget.
FIRST_LOCK_TIMEOUT = 0.1


def attempt_lock_timeout(lock_timeout: float, attempt: int) -> float:
    """lock_timeout of try number `attempt` (0-based): 100 ms, doubling, capped at `lock_timeout`."""
    return float(min(lock_timeout, FIRST_LOCK_TIMEOUT * 2.0 ** min(attempt, 30)))


def _run_in_transaction(
    conn: psycopg.Connection[Any], step: SQLStep, settings: Settings, record: Record | None,
    lock_timeout: float,
) -> None:
    with conn.transaction():
        _set_timeouts(conn, lock_timeout, settings.statement_timeout, local=True)
        conn.execute(step.sql.encode(), step.params)
        if record is not None:
            record(conn)


def _run_autocommit(
    conn: psycopg.Connection[Any], step: SQLStep, settings: Settings, record: Record | None,
    lock_timeout: float,
) -> None:
    _set_timeouts(conn, lock_timeout, settings.concurrent_statement_timeout, local=False)
    try:
        index = _index_target(step.sql)
        if index is not None:
            state = _index_state(conn, *index)
            if state == "invalid":
                # a failed or interrupted CONCURRENTLY build leaves an INVALID index behind;
                # its drop waits for locks too, so it keeps to the same lock_timeout
                conn.execute(
                    sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                        sql.Identifier(index[0], index[1]) if index[0] else sql.Identifier(index[1])
                    )
                )
            elif state == "valid":
                # built by an earlier run that died before recording it, or by someone else
                difference = _index_differs(conn, step.sql, *index)
                if difference is not None:
                    raise StepFailed(
                        f"{_where(step)}index {index[1]} already exists with another "
                        f"definition: {difference}",
                        hint="drop or rename that index, then run again",
                    )
                if record is not None:
                    with conn.transaction():
                        record(conn)
                return
        conn.execute(step.sql.encode(), step.params)
    finally:
        if not conn.closed:
            conn.execute("RESET lock_timeout")
            conn.execute("RESET statement_timeout")
    if record is not None:
        with conn.transaction():
            record(conn)


def _set_timeouts(
    conn: psycopg.Connection[Any], lock_timeout: float, statement_timeout: float, *, local: bool
) -> None:
    conn.execute(
        "SELECT set_config('lock_timeout', %s, %s), set_config('statement_timeout', %s, %s)",
        [f"{int(lock_timeout * 1000)}ms", local, f"{int(statement_timeout * 1000)}ms", local],
    )


def _index_stmt(statement: str) -> Any:
    """The parsed CREATE INDEX of `statement` (pglast's IndexStmt), or None."""
    import pglast
    from pglast import ast

    try:
        stmts = pglast.parse_sql(statement)
    except pglast.parser.ParseError:
        return None
    if len(stmts) != 1 or not isinstance(stmts[0].stmt, ast.IndexStmt):
        return None
    return stmts[0].stmt


def _index_target(statement: str) -> tuple[str | None, str] | None:
    """(schema, name) of the index a CREATE INDEX CONCURRENTLY builds, if named."""
    node = _index_stmt(statement)
    if node is None or not node.concurrent or not node.idxname or node.relation is None:
        return None
    return (node.relation.schemaname, node.idxname)


def _index_differs(
    conn: psycopg.Connection[Any], statement: str, schema: str | None, name: str
) -> str | None:
    """None when the live index `name` is what `statement` builds, else the live definition."""
    row = conn.execute(
        "SELECT pg_get_indexdef(to_regclass(%s))",
        [sql.Identifier(*(p for p in (schema, name) if p)).as_string(conn)],
    ).fetchone()
    live = str(row[0]) if row and row[0] else ""
    return None if _index_shape(live) == _index_shape(statement) else live


def _index_shape(statement: str) -> str | None:
    """A CREATE INDEX statement rendered without what does not change the index itself:
    CONCURRENTLY, IF NOT EXISTS, the schema of the table, the default access method."""
    node = _index_stmt(statement)
    if node is None:
        return None
    node.concurrent = False
    node.if_not_exists = False
    node.accessMethod = node.accessMethod or "btree"
    if node.relation is not None:
        node.relation.schemaname = None
    from pglast.stream import RawStream

    return str(RawStream()(node))


def _index_state(conn: psycopg.Connection[Any], schema: str | None, name: str) -> str | None:
    row = conn.execute(
        """
        SELECT i.indisvalid FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relname = %s AND (n.nspname = %s OR (%s::text IS NULL
              AND n.nspname = ANY(current_schemas(false))))
        """,
        [name, schema, schema],
    ).fetchone()
    if row is None:
        return None
    return "valid" if row[0] else "invalid"


def _where(step: SQLStep | GeneratedSQLStep) -> str:
    return f"{step.source}: " if step.source else ""


def _short(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _describe(exc: psycopg.Error) -> str:
    state = f"[{exc.sqlstate}] " if exc.sqlstate else ""
    return f"{state}{first_line(exc)}"


def generated_statements(conn: psycopg.Connection[Any], step: GeneratedSQLStep) -> list[SQLStep]:
    """Run a generated step's query (read-only, in a short transaction): its statements."""
    try:
        with conn.transaction():
            rows = conn.execute(step.query.encode(), step.params).fetchall()
    except psycopg.Error as exc:
        raise StepFailed(
            f"{_where(step)}generating the statements to {step.description} failed: "
            f"{_describe(exc)}"
        ) from None
    return [
        SQLStep(str(row[0]), None, step.source, needs_autocommit(str(row[0])), step.description)
        for row in rows if row and row[0]
    ]
