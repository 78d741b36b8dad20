"""The example shop history applies end to end on a fresh database, and uses every operation."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg

from zdmigrate import engine, ops
from zdmigrate.config import Settings
from zdmigrate.migration import load_migrations
from zdmigrate.phases import WORK_PHASES, Phase

EXAMPLE = Path(__file__).resolve().parent.parent / "migrations_example"


def test_example_history_uses_every_operation() -> None:
    used = {type(op).__name__ for m in load_migrations(EXAMPLE) for op in m.operations}
    assert used == set(ops.__all__) - {"Operation", "Requirement"}


def test_example_history_applies_end_to_end(tmp_path: Path, db_url: str, dsn: str) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(EXAMPLE, directory)
    settings = Settings.load({"database_url": db_url, "migrations": directory}, environ={},
                             pyproject=tmp_path / "none.toml")
    migrations = load_migrations(directory)
    for migration in migrations:
        for phase in WORK_PHASES:
            engine.advance(settings, migration.id, to=phase, override_reason="test: no fleet")
    states = {s.id: s.phase for s in engine.status(settings)}
    assert states == {m.id: Phase.CONTRACT for m in migrations}
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND relkind = 'r'").fetchall()}
        assert tables == {"users", "orders", "products", "order_items"}
        assert conn.execute("SELECT count(*) FROM archive.saved_items").fetchone() == (0,)
        cols = {r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'products'::regclass "
            "AND attnum > 0 AND NOT attisdropped").fetchall()}
        assert cols == {"id", "sku", "details", "price", "currency"}
