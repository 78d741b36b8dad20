"""One door each: the error's first line, the transient SQLSTATEs, the backoff, the connect."""

from __future__ import annotations

import random

import psycopg
import pytest

from tests.fix_db import Server
from zdmigrate import db
from zdmigrate.backfill import runner
from zdmigrate.config import Settings
from zdmigrate.errors import (
    BATCH_RETRY_SQLSTATES,
    TRANSIENT_SQLSTATES,
    DatabaseUnreachable,
    OperationalError,
    OperationInvalid,
    first_line,
    transient_reason,
)


def test_first_line_keeps_the_first_line_or_names_the_class() -> None:
    assert first_line(ValueError("  boom\nDETAIL: more\nHINT: x ")) == "boom"
    assert first_line(KeyError()) == "KeyError"
    assert first_line(RuntimeError("   ")) == "RuntimeError"
    assert first_line(OperationalError("", hint="try again")) == "OperationalError"


def test_first_line_with_problems_adds_what_an_operation_invalid_lists() -> None:
    invalid = OperationInvalid("does not fit\nmore", [f"p{i}\ndetail" for i in range(5)])
    assert first_line(invalid) == "does not fit"
    assert first_line(invalid, problems=3) == "does not fit: p0; p1; p2 (and 2 more)"
    assert first_line(OperationInvalid("no", ["a", "b"]), problems=3) == "no: a; b"
    assert first_line(OperationalError("down\nDETAIL"), problems=3) == "down"


def test_transient_sqlstates_have_a_reason_each() -> None:
    assert transient_reason("55P03") == "lock timeout (an app transaction holds a row)"
    assert transient_reason("40P01") == "deadlock with an app transaction"
    assert transient_reason("57P01") is not None and "shutdown" in transient_reason("57P01")
    assert transient_reason("42601") is None  # a syntax error is not transient
    assert transient_reason(None) is None
    assert set(TRANSIENT_SQLSTATES) >= BATCH_RETRY_SQLSTATES
    # the table agrees with psycopg's own classes
    assert psycopg.errors.lookup("55P03") is psycopg.errors.LockNotAvailable
    assert psycopg.errors.lookup("40001") is psycopg.errors.SerializationFailure


def test_backoff_is_exponential_with_full_jitter_within_the_cap() -> None:
    random.seed(12)
    backoff = db.Backoff(base=0.2, cap=1.0, budget=60)
    for attempt, ceiling in [(0, 0.2), (1, 0.4), (2, 0.8), (3, 1.0), (10, 1.0)]:
        delays = [backoff.delay(attempt) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in delays)
        # full jitter: waits well below half the ceiling happen (equal jitter never goes there)
        assert min(delays) < ceiling / 4
        assert max(delays) > ceiling * 3 / 4


def test_backoff_from_settings_and_budget() -> None:
    backoff = db.Backoff.from_settings(Settings(retry_backoff=0.1, retry_backoff_max=2.0,
                                                retry_budget=0.0))
    assert (backoff.base, backoff.cap, backoff.budget) == (0.1, 2.0, 0.0)
    first = backoff.failed()
    assert first is not None and 0 <= first <= 0.1
    while backoff.failed() is not None:  # the budget of 0 s runs out at the next tick
        pass
    backoff.succeeded()
    assert backoff.tries == 0 and backoff.failed() is not None


def test_connect_takes_a_url_and_the_backfills_session(db_url: str, pg_server: Server) -> None:
    with db.connect(db_url, application_name="zdmigrate-test", prepare_threshold=None,
                    session={"DateStyle": "ISO, YMD", "extra_float_digits": "3"}) as conn:
        assert conn.autocommit and conn.prepare_threshold is None
        assert conn.execute("SHOW DateStyle").fetchone() == ("ISO, YMD",)
        assert conn.execute("SHOW application_name").fetchone() == ("zdmigrate-test",)
        assert db.server_major(conn) == pg_server.major
    with runner.connect(db_url) as conn:
        assert conn.autocommit and conn.prepare_threshold is None
        assert conn.execute("SHOW application_name").fetchone() == ("zdmigrate-backfill",)
        assert conn.execute("SHOW IntervalStyle").fetchone() == ("postgres",)
        assert conn.execute("SHOW extra_float_digits").fetchone() == ("3",)


def test_connect_failure_is_one_line_without_the_password() -> None:
    with pytest.raises(DatabaseUnreachable) as caught:
        db.connect(Settings(database_url="postgresql://app:secret@127.0.0.1:1/shop"))
    assert "secret" not in str(caught.value)
    assert str(caught.value).startswith("cannot connect to postgresql://app:***@127.0.0.1:1/shop: ")
    assert "\n" not in caught.value.message
