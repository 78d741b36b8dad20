"""Carried indexes under hostile shapes (issue 14 items 2, 3): two copies on one table, 63-byte names."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.helpers import declare_deployed, one_migration, settings_for
from zdmigrate import engine


def _setup(tmp_path: Path, db_url: str, dsn: str, create: str, operations: str):  # type: ignore[no-untyped-def]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(create)
    folder = one_migration(tmp_path, 'compat = {"shop": {"old_unused_from": "2.0"}}\n',
                           operations=operations)
    settings = settings_for(db_url, folder)
    declare_deployed(settings)
    return settings


def _indexes(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 't'::regclass"
        ).fetchall()
    return {r[0]: r[1] for r in rows}


@pytest.mark.parametrize("second", [
    'ops.RenameColumn("t", "b", "b2")',
    'ops.ChangeColumnType("t", "b", "bigint", new_name="b_big", up="b::bigint", down="b_big::int")',
])
def test_two_column_copies_on_one_table_each_keep_their_own_indexes(
    tmp_path: Path, db_url: str, dsn: str, second: str
) -> None:
    settings = _setup(
        tmp_path, db_url, dsn,
        "CREATE TABLE t (id int PRIMARY KEY, a int, b int);"
        "CREATE INDEX t_a_idx ON t (a); CREATE UNIQUE INDEX t_b_idx ON t (b);"
        "INSERT INTO t SELECT g, g, g FROM generate_series(1, 50) g",
        f'[ops.RenameColumn("t", "a", "a2"), {second}]',
    )
    engine.advance(settings, "0001_a", to="contract")
    indexes = _indexes(dsn)
    new_b = "b2" if "RenameColumn" in second else "b_big"
    assert "(a2)" in indexes["t_a_idx"]
    assert "UNIQUE" in indexes["t_b_idx"] and f"({new_b})" in indexes["t_b_idx"]
    assert len(indexes) == 3, indexes


def test_rolling_back_switch_read_of_one_copy_keeps_the_other_copy_until_its_own_rollback(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    settings = _setup(
        tmp_path, db_url, dsn,
        "CREATE TABLE t (id int PRIMARY KEY, a int, b int);"
        "CREATE INDEX t_a_idx ON t (a); CREATE UNIQUE INDEX t_b_idx ON t (b)",
        '[ops.RenameColumn("t", "a", "a2"), ops.RenameColumn("t", "b", "b2")]',
    )
    engine.advance(settings, "0001_a", to="switch-read")
    assert len(_indexes(dsn)) == 5
    engine.rollback(settings, "0001_a", to="backfill")
    assert set(_indexes(dsn)) == {"t_pkey", "t_a_idx", "t_b_idx"}
    engine.advance(settings, "0001_a", to="contract")
    assert len(_indexes(dsn)) == 3


def test_a_unique_index_with_a_63_byte_name_survives_a_rename(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    name = "索" * 21  # 63 bytes in UTF-8, 21 characters
    assert len(name.encode()) == 63
    settings = _setup(
        tmp_path, db_url, dsn,
        f'CREATE TABLE t (id int PRIMARY KEY, a int); CREATE UNIQUE INDEX "{name}" ON t (a)',
        '[ops.RenameColumn("t", "a", "a2")]',
    )
    engine.advance(settings, "0001_a", to="contract")
    indexes = _indexes(dsn)
    assert name in indexes and "UNIQUE" in indexes[name] and "(a2)" in indexes[name]
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO t VALUES (1, 1)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO t VALUES (2, 1)")

