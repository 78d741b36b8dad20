"""RenameColumn / ChangeColumnType carry the old column's indexes and unique constraints over."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.helpers import (
    declare_deployed,
    run_contract_steps_as_done,
    settings_for,
    write_migration,
)
from zdmigrate import db, engine
from zdmigrate.config import Settings
from zdmigrate.migration import load_migrations
from zdmigrate.phases import Phase
from zdmigrate.steps import GeneratedSQLStep

SETUP = '''
revision = "0001_orders"
down_revision = None

def expand(ctx):
    ctx.execute("""
        CREATE TABLE shop."Orders" (id bigint PRIMARY KEY, user_id int NOT NULL, total int,
                                    CONSTRAINT orders_total_key UNIQUE (total));
        CREATE INDEX orders_total_idx ON shop."Orders" (total);
        CREATE INDEX orders_user_total_idx ON shop."Orders" (user_id, total DESC NULLS LAST)
            INCLUDE (id);
        CREATE INDEX orders_positive_idx ON shop."Orders" (total) WHERE total > 0;
        CREATE INDEX orders_user_idx ON shop."Orders" (user_id);
    """)
'''

RETYPE = '''
from zdmigrate import ops

revision = "0002_orders_total_bigint"
down_revision = "0001_orders"
compat = {"shop": {"old_unused_from": "2.0"}}

operations = [ops.ChangeColumnType("shop.Orders", "total", "bigint", new_name="total_big",
                                   up="total::bigint", down="total_big::int")]
'''

INDEXES = """
SELECT c.relname, pg_get_indexdef(i.indexrelid), obj_description(c.oid, 'pg_class')
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'shop."Orders"'::regclass ORDER BY c.relname
"""


def _indexes(dsn: str) -> dict[str, tuple[str, str | None]]:
    with psycopg.connect(dsn) as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(INDEXES).fetchall()}


@pytest.fixture
def settings(tmp_path: Path, db_url: str, dsn: str) -> Settings:
    folder = tmp_path / "migrations"
    folder.mkdir()
    write_migration(folder, "0001_orders", SETUP)
    write_migration(folder, "0002_orders_total_bigint", RETYPE)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA shop")
    settings = settings_for(db_url, folder)
    engine.advance(settings, "0001_orders")
    declare_deployed(settings)  # shop 2.0 no longer uses `total`
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute('INSERT INTO shop."Orders" SELECT g, g % 7, g * 10 FROM generate_series(1, 500) g')
    return settings


def test_indexes_are_copied_at_switch_read_and_renamed_at_contract(
    settings: Settings, dsn: str
) -> None:
    before = _indexes(dsn)
    engine.advance(settings, "0002_orders_total_bigint", to="switch-read")
    during = _indexes(dsn)
    copies = {name: d for name, d in during.items() if name not in before}
    assert len(copies) == 4  # the key, the plain, the partial and the composite index
    defs = sorted(d[0].split(" USING ")[1] for d in copies.values())
    assert defs == ["btree (total_big)", "btree (total_big)",
                    "btree (total_big) WHERE (total_big > 0)",
                    "btree (user_id, total_big DESC NULLS LAST) INCLUDE (id)"]
    marks = sorted((json.loads(d[1] or "{}")["index"], json.loads(d[1] or "{}")["constraint"])
                   for d in copies.values())
    assert marks == [("orders_positive_idx", None), ("orders_total_idx", None),
                     ("orders_total_key", "orders_total_key"), ("orders_user_total_idx", None)]
    assert {json.loads(d[1] or "{}")["zdm_carry"] for d in copies.values()} == {
        "0002_orders_total_bigint"}

    engine.rollback(settings, "0002_orders_total_bigint", to="backfill")
    assert _indexes(dsn) == before

    engine.advance(settings, "0002_orders_total_bigint", to="contract")
    after = _indexes(dsn)
    assert set(after) == {"Orders_pkey", "orders_total_key", "orders_total_idx",
                          "orders_user_total_idx", "orders_user_idx", "orders_positive_idx"}
    assert after["orders_positive_idx"][0].endswith("USING btree (total_big) WHERE (total_big > 0)")
    assert after["orders_total_idx"][0].endswith("USING btree (total_big)")
    assert after["orders_user_total_idx"][0].endswith(
        "USING btree (user_id, total_big DESC NULLS LAST) INCLUDE (id)")
    assert all(comment is None for _, comment in after.values())
    with psycopg.connect(dsn) as conn:
        constraint = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'orders_total_key'"
        ).fetchone()
        assert constraint == ("UNIQUE (total_big)",)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute('INSERT INTO shop."Orders" (id, user_id, total_big) VALUES (9999, 1, 10)')


def test_contract_rerun_after_a_kill_finishes_the_renames(settings: Settings, dsn: str) -> None:
    engine.advance(settings, "0002_orders_total_bigint", to="switch-read")
    (migration,) = [m for m in load_migrations(settings.migrations) if m.id.startswith("0002")]
    steps = migration.render(Phase.CONTRACT)
    at = next(i for i, s in enumerate(steps) if isinstance(s, GeneratedSQLStep)
              and s.description.startswith("give the copied indexes"))
    before_finish, finish = steps[:at], steps[at]
    assert isinstance(finish, GeneratedSQLStep)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # contract as a run that was killed half-way through the renames would leave it
        run_contract_steps_as_done(conn, migration.id, before_finish)
        statements = db.generated_statements(conn, finish)
        assert len(statements) == 8  # a rename (or constraint) and an unmark, per copy
        conn.execute(statements[0].sql.encode())
    engine.advance(settings, "0002_orders_total_bigint", to="contract")
    after = _indexes(dsn)
    assert {"orders_total_idx", "orders_total_key", "orders_user_total_idx"} <= set(after)
    assert all(comment is None for _, comment in after.values())
