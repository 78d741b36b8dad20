"""The backfill engine against real PostgreSQL: keys, schemas, quoting, resume, errors."""

from __future__ import annotations

import json
import threading
from typing import Any

import psycopg
import pytest
from psycopg import sql

from zdmigrate.backfill import BackfillEvent, run_backfill, set_paused, verify_backfill
from zdmigrate.config import Settings
from zdmigrate.errors import BadInput, DatabaseUnreachable
from zdmigrate.output.progress import JsonReporter, PlainReporter
from zdmigrate.steps import BackfillStep, Source

FAST = {"max_replication_lag": 0, "poll_interval": 0.05}


def settings_for(url: str) -> Settings:
    return Settings(database_url=url)


def make_table(dsn: str, rows: int, *, key: str = "id bigint PRIMARY KEY") -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE items ({key}, old int NOT NULL, new int, touched int NOT NULL DEFAULT 0)")
        conn.execute(
            "INSERT INTO items (id, old) SELECT g, g %% 1000 FROM generate_series(1, %s) g",
            [rows],
        )
        conn.execute("ANALYZE items")


def wrong_rows(dsn: str, table: str = "items") -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE new IS DISTINCT FROM old * 2").format(
                sql.Identifier(table)
            )
        ).fetchone()
    assert row is not None
    return int(row[0])


def touched_counts(dsn: str) -> dict[int, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT touched, count(*) FROM items GROUP BY touched").fetchall()
    return {int(t): int(n) for t, n in rows}


STEP = BackfillStep("items", {"new": "old * 2"}, where="new IS NULL")
# no `where`: every row is updated, and `touched` shows how many times
COUNTING = BackfillStep(
    "items", {"new": "old * 2", "touched": "touched + 1"}, verify="new IS DISTINCT FROM old * 2"
)


def test_primary_key_backfill_updates_every_row_once(dsn: str, db_url: str) -> None:
    make_table(dsn, 2500)
    result = run_backfill(
        settings_for(db_url), migration_id="m1", step=COUNTING, batch_size=100,
        chunk_rows=700, **FAST,
    )
    assert result.done
    assert result.rows_done == 2500 and result.rows_updated == 2500
    assert result.key == "primary key (id)"
    assert wrong_rows(dsn) == 0
    assert touched_counts(dsn) == {1: 2500}
    assert result.verification is not None and result.verification.mismatches == 0
    with psycopg.connect(dsn) as conn:
        ranges = conn.execute(
            "SELECT count(*), bool_and(status = 'done') FROM zdmigrate.backfill_ranges"
        ).fetchone()
        state = conn.execute(
            "SELECT status, rows_done, rows_updated FROM zdmigrate.backfills"
        ).fetchone()
    assert ranges == (4, True)  # 2500 rows in chunks of 700
    assert state == ("done", 2500, 2500)


def test_rows_the_app_already_fixed_are_left_alone(dsn: str, db_url: str) -> None:
    make_table(dsn, 300)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE items SET new = -1 WHERE id <= 10")  # the app wrote these
    result = run_backfill(settings_for(db_url), migration_id="m1", step=STEP, **FAST)
    assert result.rows_done == 300 and result.rows_updated == 290
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM items WHERE new = -1").fetchone() == (10,)


def test_rerun_of_a_finished_backfill_changes_nothing(dsn: str, db_url: str) -> None:
    make_table(dsn, 200)
    run_backfill(settings_for(db_url), migration_id="m1", step=COUNTING, **FAST)
    again = run_backfill(settings_for(db_url), migration_id="m1", step=COUNTING, **FAST)
    assert again.done and again.batches == 0
    assert touched_counts(dsn) == {1: 200}


def test_composite_key_in_a_quoted_non_public_schema(dsn: str, db_url: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute('CREATE SCHEMA "Sales Data"')
        conn.execute(
            'CREATE TABLE "Sales Data"."Order Lines" ("Tenant ID" text, "Line" int, '
            '"Amount" int NOT NULL, "Amount x2" int, PRIMARY KEY ("Tenant ID", "Line"))'
        )
        conn.execute(
            """INSERT INTO "Sales Data"."Order Lines" ("Tenant ID", "Line", "Amount")
            SELECT t, l, l * 3 FROM unnest(ARRAY['a''b', 'b "q"', 'c;--', 'Z']) t,
            generate_series(1, 250) l"""
        )
    step = BackfillStep(
        "Order Lines", {"Amount x2": '"Amount" * 2'}, where='"Amount x2" IS NULL',
        schema="Sales Data",
    )
    result = run_backfill(
        settings_for(db_url), migration_id="m1", step=step, batch_size=60, chunk_rows=170, **FAST
    )
    assert result.done and result.rows_updated == 1000
    assert result.key == 'primary key (Tenant ID, Line)'
    with psycopg.connect(dsn) as conn:
        bad = conn.execute(
            'SELECT count(*) FROM "Sales Data"."Order Lines" '
            'WHERE "Amount x2" IS DISTINCT FROM "Amount" * 2'
        ).fetchone()
    assert bad == (0,)


def test_table_found_through_search_path(dsn: str, db_url: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA app")
        conn.execute("CREATE TABLE app.items (id int PRIMARY KEY, old int, new int)")
        conn.execute("INSERT INTO app.items SELECT g, g, NULL FROM generate_series(1, 50) g")
        conn.execute("ALTER DATABASE {} SET search_path = app, public".replace(
            "{}", conn.info.dbname))
    result = run_backfill(settings_for(db_url), migration_id="m1", step=STEP, **FAST)
    assert result.table == "app.items" and result.rows_updated == 50


def test_no_primary_key_uses_a_unique_not_null_key(dsn: str, db_url: str) -> None:
    make_table(dsn, 400, key="id bigint NOT NULL")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE items ADD COLUMN maybe int UNIQUE")  # nullable: not usable
        conn.execute("CREATE UNIQUE INDEX items_id_key ON items (id)")
    result = run_backfill(
        settings_for(db_url), migration_id="m1", step=COUNTING, batch_size=50, **FAST
    )
    assert result.key == "unique index items_id_key (id)"
    assert touched_counts(dsn) == {1: 400} and wrong_rows(dsn) == 0


def test_no_usable_key_walks_ctid_ranges(dsn: str, db_url: str) -> None:
    make_table(dsn, 3000, key="id bigint")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE UNIQUE INDEX ON items (id)")  # nullable column: not a key
    # no `where`: in ctid mode only rows that differ are touched, so a row an
    # UPDATE moved ahead of the cursor is not changed twice
    step = BackfillStep("items", {"new": "old * 2"})
    result = run_backfill(
        settings_for(db_url), migration_id="m1", step=step, batch_size=200, chunk_rows=900,
        **FAST,
    )
    assert result.key.startswith("ctid")
    assert result.done and wrong_rows(dsn) == 0
    assert result.rows_updated == 3000
    assert result.verification is not None and result.verification.mismatches == 0


def test_percent_in_author_sql_is_not_a_placeholder(dsn: str, db_url: str) -> None:
    make_table(dsn, 100)
    step = BackfillStep("items", {"new": "old % 7"}, where="new IS NULL AND id % 2 = 0")
    result = run_backfill(settings_for(db_url), migration_id="m1", step=step, **FAST)
    assert result.rows_updated == 50
    with psycopg.connect(dsn) as conn:
        assert conn.execute(
            "SELECT count(*) FROM items WHERE id % 2 = 0 AND new = old % 7", prepare=False
        ).fetchone() == (50,)


def test_stopped_run_resumes_without_redoing_a_batch(dsn: str, db_url: str) -> None:
    make_table(dsn, 2000)
    stop = threading.Event()
    seen: list[BackfillEvent] = []

    def stop_after_three(event: BackfillEvent) -> None:
        seen.append(event)
        if sum(e.kind == "progress" for e in seen) >= 3:
            stop.set()

    first = run_backfill(
        settings_for(db_url), migration_id="m1", step=COUNTING, reporter=stop_after_three,
        stop=stop, batch_size=100, min_batch_size=100, max_batch_size=100, **FAST,
    )
    assert first.status == "stopped" and 0 < first.rows_done < 2000
    counts = touched_counts(dsn)
    assert counts[1] == first.rows_done and counts[0] == 2000 - first.rows_done
    second = run_backfill(settings_for(db_url), migration_id="m1", step=COUNTING, **FAST)
    assert second.done and second.rows_done == 2000
    assert touched_counts(dsn) == {1: 2000}


def test_unknown_table_is_bad_input_naming_the_file(dsn: str, db_url: str) -> None:
    step = BackfillStep("nope", {"new": "1"}, source=Source("migrations/0003_x.py", 12))
    with pytest.raises(BadInput, match=r"migrations/0003_x.py:12: backfill table 'nope'"):
        run_backfill(settings_for(db_url), migration_id="m1", step=step, **FAST)


def test_expression_that_does_not_compile_changes_nothing(dsn: str, db_url: str) -> None:
    make_table(dsn, 20)
    step = BackfillStep(
        "items", {"new": "no_such_column * 2"}, source=Source("migrations/0003_x.py", 7)
    )
    with pytest.raises(BadInput, match=r"0003_x.py:7: .*no_such_column") as info:
        run_backfill(settings_for(db_url), migration_id="m1", step=step, **FAST)
    assert info.value.exit_code == 2
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM items WHERE new IS NOT NULL").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM zdmigrate.backfills").fetchone() == (0,)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("batch_sise", 10, "unknown backfill option 'batch_sise'"),
        ("batch_size", "lots", "batch_size='lots' must be a whole number"),
        ("max_rows_per_second", -5, "must not be negative"),
    ],
)
def test_bad_options_are_bad_input(db_url: str, option: str, value: Any, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        run_backfill(settings_for(db_url), migration_id="m1", step=STEP, **{option: value})


def test_verification_uses_verify_then_where_then_the_expressions(dsn: str) -> None:
    make_table(dsn, 30)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE items SET new = old * 2 WHERE id > 3")
        conn.execute("UPDATE items SET new = 0 WHERE id = 3")  # wrong, but where no longer matches
        with_verify = verify_backfill(
            conn, BackfillStep("items", {"new": "old * 2"}, where="new IS NULL",
                               verify="new IS DISTINCT FROM old * 2"),
        )
        by_where = verify_backfill(conn, STEP)
        by_exprs = verify_backfill(conn, BackfillStep("items", {"new": "old * 2"}), sample=2)
    assert with_verify.mismatches == 3
    assert with_verify.sample_keys == [{"id": "1"}, {"id": "2"}, {"id": "3"}]
    assert by_where.mismatches == 2
    assert by_exprs.mismatches == 3 and len(by_exprs.sample_keys) == 2
    blocker = with_verify.blocker("m1")
    assert blocker is not None and "(id=1)" in blocker.message


def test_lock_timeout_backs_off_and_retries(dsn: str, db_url: str) -> None:
    make_table(dsn, 300)
    app = psycopg.connect(dsn)
    app.execute("UPDATE items SET old = old WHERE id = 150")  # holds the row lock
    blocked = threading.Event()

    def on_event(event: BackfillEvent) -> None:
        if event.kind == "lock-timeout":
            blocked.set()

    out: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: out.update(result=run_backfill(
        settings_for(db_url), migration_id="m1", step=STEP, reporter=on_event,
        lock_timeout_ms=50, batch_size=300, **FAST,
    )))
    worker.start()
    assert blocked.wait(60)
    app.commit()  # the app transaction ends: the backfill gets through
    worker.join(60)
    app.close()
    assert out["result"].done and wrong_rows(dsn) == 0


def test_pause_switch_holds_workers_until_resumed(dsn: str, db_url: str) -> None:
    make_table(dsn, 400)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert set_paused(conn, "zdmigrate", "m1", [STEP], paused=True) == 1
    paused = threading.Event()
    events: list[BackfillEvent] = []

    def on_event(event: BackfillEvent) -> None:
        events.append(event)
        if event.kind == "paused":
            paused.set()

    out: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: out.update(result=run_backfill(
        settings_for(db_url), migration_id="m1", step=STEP, reporter=on_event, **FAST,
    )))
    worker.start()
    assert paused.wait(60)
    assert wrong_rows(dsn) == 400  # nothing done while paused
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert set_paused(conn, "zdmigrate", "m1", [STEP], paused=False) == 1
    worker.join(60)
    assert out["result"].done and wrong_rows(dsn) == 0
    assert [e.kind for e in events].count("resumed") == 1


def test_paused_run_returns_when_told_not_to_wait(dsn: str, db_url: str) -> None:
    make_table(dsn, 50)
    with psycopg.connect(dsn, autocommit=True) as conn:
        set_paused(conn, "zdmigrate", "m1", [STEP], paused=True)
    result = run_backfill(
        settings_for(db_url), migration_id="m1", step=STEP, wait_when_paused=False, **FAST
    )
    assert result.status == "paused" and wrong_rows(dsn) == 50


def test_workers_in_one_process_share_the_table(dsn: str, db_url: str) -> None:
    make_table(dsn, 3000)
    result = run_backfill(
        settings_for(db_url), migration_id="m1", step=COUNTING, workers=3, batch_size=50,
        chunk_rows=200, **FAST,
    )
    assert result.done and touched_counts(dsn) == {1: 3000}
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) >= 15, sum(rows_done)::int FROM zdmigrate.backfill_ranges"
        ).fetchone()
    assert row == (True, 3000)  # chunks of 200 rows


def test_reporters_print_lines_and_json(dsn: str, db_url: str) -> None:
    import io

    make_table(dsn, 300)
    text, js = io.StringIO(), io.StringIO()
    plain, json_reporter = PlainReporter(text, interval=0), JsonReporter(js, interval=0)

    def both(event: BackfillEvent) -> None:
        plain(event)
        json_reporter(event)

    run_backfill(
        settings_for(db_url), migration_id="m1", step=STEP, reporter=both, batch_size=100,
        min_batch_size=100, max_batch_size=100, **FAST,
    )
    records = [json.loads(line) for line in js.getvalue().splitlines()]
    assert records[0]["event"] == "start" and records[-1]["event"] == "done"
    progress = [r for r in records if r["event"] == "progress"]
    assert [r["rows_done"] for r in progress] == [100, 200, 300]
    assert records[-1]["percent"] == 100.0
    lines = text.getvalue().splitlines()
    assert lines[-1] == "backfill m1 public.items: done, 300 rows covered, 300 updated"
    assert "rows" in lines[1] and "ETA" in lines[1]


def test_lost_connection_is_an_operational_error_and_the_rerun_resumes(
    dsn: str, db_url: str
) -> None:
    make_table(dsn, 20_000)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_backfill(settings_for(db_url), migration_id="m1", step=STEP, batch_size=100,
                         min_batch_size=100, max_batch_size=100, max_rows_per_second=4000,
                         **FAST)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    with psycopg.connect(dsn, autocommit=True) as admin:
        for _ in range(200):  # wait until some batches are in
            done = admin.execute("SELECT count(*) FROM items WHERE new IS NOT NULL").fetchone()
            if done and done[0] >= 500:
                break
            threading.Event().wait(0.05)
        # the database "goes away" for the backfill's connections
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = 'zdmigrate-backfill' AND datname = current_database()")
    worker.join(60)
    assert len(errors) == 1
    assert isinstance(errors[0], DatabaseUnreachable)
    assert errors[0].exit_code == 3
    assert "lost its database connection" in str(errors[0])
    assert 0 < wrong_rows(dsn) < 20_000
    result = run_backfill(settings_for(db_url), migration_id="m1", step=STEP, **FAST)
    assert result.done
    assert wrong_rows(dsn) == 0
