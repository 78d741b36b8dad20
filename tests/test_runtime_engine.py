"""The runtime with the real engine: `phase advance` seen live, shadow reads in status and gate."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import psycopg
import pytest

from tests.test_runtime import runtime_factory, wait_until
from zdmigrate import engine
from zdmigrate.cli import run as cli_run
from zdmigrate.config import Settings
from zdmigrate.errors import PhaseRefused
from zdmigrate.phases import Phase

__all__ = ["runtime_factory"]

M = "0002_rename"

USERS = '''
revision = "0001_users"
down_revision = None

def expand(ctx):
    ctx.execute("CREATE TABLE users (id serial PRIMARY KEY, name text)")
'''

RENAME = '''
revision = "0002_rename"
down_revision = "0001_users"

# shop 1.5 writes both columns with zdmigrate.runtime's DualWrite
compat = {"shop": {"dual_write_from": "1.5"}}

def expand(ctx):
    ctx.execute("ALTER TABLE users ADD COLUMN full_name text")

def backfill(ctx):
    ctx.backfill("users", set={"full_name": "name"}, where="full_name IS DISTINCT FROM name")

def contract(ctx):
    ctx.execute("ALTER TABLE users DROP COLUMN name")
'''


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_users.py").write_text(textwrap.dedent(USERS))
    (folder / "0002_rename.py").write_text(textwrap.dedent(RENAME))
    return Settings(database_url=db_url, migrations=folder)


def test_phase_advance_is_seen_by_a_running_runtime_within_two_seconds(
    settings, dsn, runtime_factory
):
    engine.init(settings)
    engine.advance(settings, "0001_users", to="contract")
    rt = runtime_factory(version="1.5", poll_interval=3600)  # NOTIFY only
    dw = rt.dual_write(M, {"name": "full_name"})
    assert rt.phase(M) is Phase.PENDING
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO users (name) VALUES ('before')")

    engine.advance(settings, M, to="expand")
    assert wait_until(lambda: rt.phase(M) is Phase.EXPAND, timeout=2.0)
    with psycopg.connect(dsn) as conn:
        values = dw.write({"name": "during"})
        conn.execute("INSERT INTO users (name, full_name) VALUES (%(name)s, %(full_name)s)", values)

    # backfill needs a dual-writing version live: the runtime's heartbeat is that proof
    engine.advance(settings, M, to="backfill")
    assert wait_until(lambda: rt.phase(M) is Phase.BACKFILL, timeout=2.0)
    engine.advance(settings, M, to="switch-read")
    assert wait_until(lambda: dw.read_column("name") == "full_name", timeout=2.0)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT full_name FROM users ORDER BY id").fetchall()
    assert rows == [("before",), ("during",)]


def _to_backfill(settings: Settings, runtime_factory):
    engine.advance(settings, "0001_users", to="contract")
    rt = runtime_factory(version="1.5", heartbeat_interval=0.1)
    engine.advance(settings, M, to="backfill")
    assert wait_until(lambda: rt.phase(M) is Phase.BACKFILL)
    return rt


def test_status_shows_the_shadow_read_counts_of_live_instances(settings, runtime_factory,
                                                                capsys):
    rt = _to_backfill(settings, runtime_factory)
    dw = rt.dual_write(M, {"name": "full_name"})
    for row in ({"name": "a", "full_name": "a"}, {"name": "b", "full_name": "b"},
                {"name": "c", "full_name": "C"}):
        dw.compare(row)

    def counts():
        status = {s.id: s for s in engine.status(settings)}[M]
        return status.shadow_reads or {}

    assert wait_until(lambda: counts().get("compared") == 3)
    assert (counts()["mismatched"], counts()["instances"], counts()["phase"]) == (1, 1, "backfill")
    argv = ["--database-url", settings.database_url, "--migrations", str(settings.migrations)]
    assert cli_run([*argv, "status", "--format", "json"]) == 0
    shown = {m["id"]: m for m in json.loads(capsys.readouterr().out)["migrations"]}
    assert shown[M]["shadow_reads"]["mismatched"] == 1
    assert cli_run([*argv, "status"]) == 0
    assert "shadow reads: 3 compared, 1 mismatched" in capsys.readouterr().out


def test_switch_read_check_is_off_by_default(settings, runtime_factory):
    _to_backfill(settings, runtime_factory)
    assert settings.shadow_read_window == 0
    engine.advance(settings, M, to="switch-read")  # no shadow reads at all: not asked for


def test_switch_read_check_needs_clean_shadow_reads_over_the_window(settings, runtime_factory):
    rt = _to_backfill(settings, runtime_factory)
    strict = settings.with_(shadow_read_window=3.0)
    dw = rt.dual_write(M, {"name": "full_name"})

    def refusal() -> str:
        with pytest.raises(PhaseRefused) as info:
            engine.advance(strict, M, to="switch-read")
        assert [b.check for b in info.value.blockers] == ["shadow-reads"]
        return info.value.blockers[0].message

    assert "no live app instance reported shadow reads" in refusal()
    dw.compare({"name": "x", "full_name": "y"})
    assert wait_until(lambda: "disagreed" in refusal())
    # a clean window only after the last mismatch: here, a new instance starts clean
    rt.stop()
    fresh = runtime_factory(version="1.5", heartbeat_interval=0.1)
    fresh_dw = fresh.dual_write(M, {"name": "full_name"})
    assert wait_until(lambda: fresh.phase(M) is Phase.BACKFILL)
    fresh_dw.compare({"name": "x", "full_name": "x"})
    assert wait_until(lambda: "cover less than the required 3s window" in refusal())

    def advanced() -> bool:
        fresh_dw.compare({"name": "x", "full_name": "x"})
        try:
            engine.advance(strict, M, to="switch-read")
        except PhaseRefused:
            return False
        return True

    assert wait_until(advanced)
    assert wait_until(lambda: fresh.phase(M) is Phase.SWITCH_READ)
