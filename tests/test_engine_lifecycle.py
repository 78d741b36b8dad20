"""The example rename through every phase and back, with old and new app clients writing."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from tests.helpers import copy_example, declare_deployed, settings_for
from zdmigrate import engine
from zdmigrate.errors import PhaseRefused
from zdmigrate.phases import Phase

RENAME = "0002_rename_users_name"


def _columns(dsn: str, table: str = "users") -> dict[str, bool]:
    """column -> nullable"""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT column_name, is_nullable = 'YES' FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s", [table],
        ).fetchall()
    return dict(rows)


def _triggers(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = 'public.users'::regclass"
        ).fetchall()
    return {r[0] for r in rows}


def _phase(dsn: str, migration_id: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT phase FROM zdmigrate.migrations WHERE id = %s",
                           [migration_id]).fetchone()
    return row[0] if row else "pending"


def test_rename_goes_through_every_phase_and_back(tmp_path: Path, db_url: str, dsn: str) -> None:
    settings = settings_for(db_url, copy_example(tmp_path, upto=RENAME))
    engine.advance(settings)  # 0001: a plain Alembic revision, pending -> complete at once
    assert _phase(dsn, "0001_create_users") == "contract"
    original = _columns(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO users (name, email) SELECT 'user ' || g, g || '@x' "
                     "FROM generate_series(1, 2500) g")

    for phase in [Phase.EXPAND, Phase.DUAL_WRITE, Phase.BACKFILL, Phase.SWITCH_READ]:
        engine.advance(settings, RENAME, to=phase)
        assert _phase(dsn, RENAME) == phase.value
        assert "full_name" in _columns(dsn)
        assert "zdm_0002_users_name_sync" in _triggers(dsn)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE full_name IS DISTINCT FROM name"
                            ).fetchone() == (0,)

    engine.rollback(settings, RENAME, to="pending")
    assert _phase(dsn, RENAME) == "pending"
    assert _columns(dsn) == original
    assert _triggers(dsn) == set()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (2500,)
        log = conn.execute("SELECT action, from_phase, to_phase, outcome FROM zdmigrate.phase_log "
                           "WHERE migration_id = %s ORDER BY id", [RENAME]).fetchall()
    assert [r[:3] for r in log[-4:]] == [
        ("rollback", "switch-read", "backfill"), ("rollback", "backfill", "dual-write"),
        ("rollback", "dual-write", "expand"), ("rollback", "expand", "pending"),
    ]
    assert {r[3] for r in log} == {"done"}

    declare_deployed(settings)  # shop 2.0 no longer uses `name`: the fleet gate lets contract in
    engine.advance(settings, RENAME, to="contract")
    assert _phase(dsn, RENAME) == "contract"
    columns = _columns(dsn)
    assert "name" not in columns
    assert columns["full_name"] is False  # NOT NULL, set through the validated check
    assert _triggers(dsn) == set()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE full_name LIKE 'user %'"
                            ).fetchone() == (2500,)
    with pytest.raises(PhaseRefused, match="point of no return"):
        engine.rollback(settings, RENAME)


class _Client(threading.Thread):
    """An app version writing and reading in a loop on its own connection."""

    def __init__(self, dsn: str, version: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.dsn, self.version, self.stop = dsn, version, stop
        self.requests = 0
        self.errors: list[str] = []

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True,
                             application_name=f"shop@{self.version}") as conn:
            while not self.stop.is_set():
                try:
                    self.request(conn, self.requests)
                    self.requests += 1
                except psycopg.Error as exc:
                    self.errors.append(str(exc))

    def request(self, conn: psycopg.Connection, n: int) -> None:
        if self.version == "1.0":  # the old app: knows only `name`
            row = conn.execute("INSERT INTO users (name, email) VALUES (%s, %s) RETURNING id",
                               [f"old {n}", f"old{n}@x"]).fetchone()
            assert row is not None
            conn.execute("UPDATE users SET name = name || '!' WHERE id = %s", [row[0]])
            conn.execute("SELECT id, name FROM users WHERE id = %s", [row[0]]).fetchone()
        else:  # the new app: knows only `full_name`
            row = conn.execute("INSERT INTO users (full_name, email) VALUES (%s, %s) RETURNING id",
                               [f"new {n}", f"new{n}@x"]).fetchone()
            assert row is not None
            conn.execute("UPDATE users SET full_name = full_name || '?' WHERE id = %s", [row[0]])
            conn.execute("SELECT id, full_name FROM users WHERE id = %s", [row[0]]).fetchone()


def test_old_and_new_app_versions_keep_working_until_contract(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    settings = settings_for(db_url, copy_example(tmp_path, upto=RENAME))
    engine.advance(settings)  # 0001
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO users (name, email) SELECT 'seed ' || g, g || '@x' "
                     "FROM generate_series(1, 3000) g")
    stop = threading.Event()
    old = _Client(dsn, "1.0", stop)
    old.start()
    new: _Client | None = None
    try:
        engine.advance(settings, RENAME, to="expand")
        new = _Client(dsn, "2.0", stop)  # the new version can deploy once full_name exists
        new.start()
        for phase in ("dual-write", "backfill", "switch-read"):
            engine.advance(settings, RENAME, to=phase)
    finally:
        stop.set()
        old.join(10)
        if new:
            new.join(10)
    assert old.errors == [] and new is not None and new.errors == []
    assert old.requests > 0 and new.requests > 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE full_name IS DISTINCT FROM name"
                            ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM users WHERE name LIKE 'old %!'"
                            ).fetchone() == (old.requests,)
        assert conn.execute("SELECT count(*) FROM users WHERE full_name LIKE 'new %?'"
                            ).fetchone() == (new.requests,)
