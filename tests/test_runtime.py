"""Runtime lifecycle against real PostgreSQL: heartbeats, phase cache, outage, fork, exit."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from zdmigrate import state
from zdmigrate.phases import Phase
from zdmigrate.runtime import Runtime
from zdmigrate.state import Store
from zdmigrate.state import migrations as _state_access

SCHEMA = "zdmigrate"
ROOT = Path(__file__).resolve().parents[1]
FAST = {"heartbeat_interval": 0.2, "poll_interval": 0.5, "retry_interval": 0.1,
        "retry_interval_max": 0.5, "start_timeout": 5.0}


def wait_until(predicate: Callable[[], object], timeout: float = 20.0) -> bool:
    """Poll `predicate` until true; False when `timeout` passed (the test then fails)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def ensure_state(dsn: str, schema: str = SCHEMA) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        Store(conn, schema).ensure_schema()


def set_phase(dsn: str, migration: str, phase: Phase, *, notify: bool = True,
              schema: str = SCHEMA) -> None:
    """Change a phase the way the engine does: set_phase and notify_phase in one transaction."""
    with psycopg.connect(dsn) as conn:
        store = Store(conn, schema)
        store.migrations.set_phase(migration, phase, "checksum")
        if notify:
            store.migrations.notify_phase(migration, phase)


def instances(dsn: str, schema: str = SCHEMA) -> list[dict[str, Any]]:
    with psycopg.connect(dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(
            psycopg.sql.SQL(
                "SELECT *, last_seen + ttl_seconds * interval '1 second' > now() AS live "
                "FROM {} ORDER BY instance_id"
            ).format(psycopg.sql.Identifier(schema, "instances"))
        )
        return list(cur.fetchall())


def terminate_runtime_backends(dsn: str, application_name: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            [application_name],
        ).fetchall()
    return len(rows)


@pytest.fixture
def runtime_factory(dsn: str) -> Iterator[Callable[..., Runtime]]:
    started: list[Runtime] = []

    def make(source: object = None, **kwargs: Any) -> Runtime:
        options = {"app": "shop", "version": "1.5", **FAST, **kwargs}
        rt = Runtime(dsn if source is None else source, **options)
        started.append(rt.start())
        return rt

    yield make
    for rt in started:
        rt.stop()


# -- heartbeats ----------------------------------------------------------------


def test_heartbeat_registers_the_instance_and_stop_removes_it(dsn, runtime_factory):
    ensure_state(dsn)
    rt = runtime_factory(version="2.0.1", ttl_seconds=7)
    assert wait_until(lambda: len(instances(dsn)) == 1)
    row = instances(dsn)[0]
    assert (row["app"], row["version"], row["source"]) == ("shop", "2.0.1", "heartbeat")
    assert row["instance_id"] == rt.instance_id == f"{row['host']}:{os.getpid()}"
    assert row["pid"] == os.getpid() and row["ttl_seconds"] == 7 and row["live"]
    first_seen = row["last_seen"]
    assert wait_until(lambda: instances(dsn)[0]["last_seen"] > first_seen), "heartbeats go on"
    rt.stop()
    assert instances(dsn) == []


def test_runtime_connection_names_app_and_version(dsn, runtime_factory):
    runtime_factory(version="3.1")
    with psycopg.connect(dsn) as conn:
        names = [r[0] for r in conn.execute("SELECT application_name FROM pg_stat_activity")]
    assert "zdmigrate-runtime shop@3.1" in names  # not a fleet "session": heartbeats count


def _run_child(dsn: str, body: str) -> subprocess.Popen[str]:
    code = textwrap.dedent(f"""
        import sys, time
        from zdmigrate.runtime import Runtime
        rt = Runtime({dsn!r}, app="child", version="9", heartbeat_interval=0.2, ttl_seconds=1)
        rt.start()
        print(rt.instance_id, flush=True)
    """) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


def test_row_is_removed_at_interpreter_exit_without_stop(dsn):
    ensure_state(dsn)
    child = _run_child(dsn, "sys.stdin and None\n")  # exits right away, never calls stop()
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    assert out.strip(), "the child registered"
    assert instances(dsn) == []


def test_a_killed_instance_stays_until_its_ttl_runs_out(dsn):
    ensure_state(dsn)
    child = _run_child(dsn, "time.sleep(120)\n")
    try:
        assert child.stdout is not None
        instance_id = child.stdout.readline().strip()
        assert wait_until(lambda: [r["live"] for r in instances(dsn)] == [True])
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    rows = instances(dsn)
    assert [r["instance_id"] for r in rows] == [instance_id], "no cleanup after SIGKILL"
    assert wait_until(lambda: [r["live"] for r in instances(dsn)] == [False]), "TTL expired"


# -- the phase cache ------------------------------------------------------------


def test_phase_change_is_seen_within_two_seconds_through_notify(dsn, runtime_factory):
    ensure_state(dsn)
    rt = runtime_factory(poll_interval=3600)  # polling off: only NOTIFY can deliver it
    assert rt.phase("0002_rename") is Phase.PENDING
    for phase in (Phase.EXPAND, Phase.DUAL_WRITE, Phase.BACKFILL):
        set_phase(dsn, "0002_rename", phase)
        assert wait_until(lambda p=phase: rt.phase("0002_rename") is p, timeout=2.0)
    assert rt.phases() == {"0002_rename": Phase.BACKFILL}


def test_phase_change_without_notify_is_seen_by_polling_within_two_seconds(dsn, runtime_factory):
    ensure_state(dsn)
    rt = runtime_factory(poll_interval=1.0)
    set_phase(dsn, "0002_rename", Phase.SWITCH_READ, notify=False)
    assert wait_until(lambda: rt.phase("0002_rename") is Phase.SWITCH_READ, timeout=2.0)


def test_start_loads_phases_before_returning(dsn):
    ensure_state(dsn)
    set_phase(dsn, "0001", Phase.CONTRACT)
    with Runtime(dsn, app="shop", version="1") as rt:
        assert rt.phase("0001") is Phase.CONTRACT
        assert rt.phase("never-heard-of") is Phase.PENDING


def test_custom_schema_and_channel(dsn, runtime_factory):
    ensure_state(dsn, "zdm_state")
    rt = runtime_factory(schema="zdm_state", poll_interval=3600)
    set_phase(dsn, "m", Phase.EXPAND, schema="zdm_state")
    assert wait_until(lambda: rt.phase("m") is Phase.EXPAND)
    assert wait_until(lambda: len(instances(dsn, "zdm_state")) == 1)


def test_channel_and_payload_agree_with_state_module(dsn):
    for schema in ("zdmigrate", "Odd Name"):
        assert _state_access.notify_channel(schema) == state.migrations.notify_channel(schema)
    ensure_state(dsn)
    with psycopg.connect(dsn, autocommit=True) as listener, psycopg.connect(dsn) as writer:
        _state_access.listen(listener, SCHEMA)
        Store(writer, SCHEMA).migrations.notify_phase("0007_x", Phase.SWITCH_READ)
        writer.commit()
        payloads = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
    assert [_state_access.parse_payload(p) for p in payloads] == [("0007_x", Phase.SWITCH_READ)]


def test_missing_state_schema_counts_as_pending_and_is_logged_once(dsn, runtime_factory, caplog):
    caplog.set_level(logging.INFO, logger="zdmigrate.runtime")
    rt = runtime_factory(poll_interval=0.1)
    time.sleep(0.6)  # several polls and heartbeats against the missing schema
    assert rt.phase("0002_rename") is Phase.PENDING
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings  # one for the phases, one for the heartbeat
    assert any("zdmigrate.migrations does not exist" in w for w in warnings)
    ensure_state(dsn)  # as `zdmigrate init` would
    set_phase(dsn, "0002_rename", Phase.EXPAND)
    assert wait_until(lambda: rt.phase("0002_rename") is Phase.EXPAND)
    assert wait_until(lambda: len(instances(dsn)) == 1)
    assert any("works again" in r.getMessage() for r in caplog.records)


# -- failure and recovery --------------------------------------------------------


def test_terminated_connection_keeps_phases_and_recovers(dsn, runtime_factory):
    ensure_state(dsn)
    set_phase(dsn, "m", Phase.BACKFILL)
    rt = runtime_factory(version="7.7", poll_interval=3600)
    assert rt.phase("m") is Phase.BACKFILL
    assert terminate_runtime_backends(dsn, "zdmigrate-runtime shop@7.7") == 1
    assert rt.phase("m") is Phase.BACKFILL, "last known phase kept"
    assert wait_until(lambda: rt.connected)
    # a NOTIFY sent while it was away is lost, but the reload on reconnect catches up
    set_phase(dsn, "m", Phase.SWITCH_READ)
    assert wait_until(lambda: rt.phase("m") is Phase.SWITCH_READ)
    assert wait_until(lambda: [r["version"] for r in instances(dsn)] == ["7.7"])


class Switch:
    """A connection source that can be pointed at a dead port, as in an outage."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.down = True
        self.attempts = 0

    def __call__(self) -> psycopg.Connection[Any]:
        self.attempts += 1
        if self.down:
            return psycopg.connect("host=127.0.0.1 port=1 connect_timeout=2")
        return psycopg.connect(self.dsn, application_name="switched")


def test_unreachable_database_never_raises_logs_once_and_recovers(dsn, caplog):
    caplog.set_level(logging.INFO, logger="zdmigrate.runtime")
    ensure_state(dsn)
    set_phase(dsn, "m", Phase.DUAL_WRITE)
    source = Switch(dsn)
    rt = Runtime(source, app="shop", version="1", **{**FAST, "start_timeout": 0.3})
    with rt:
        assert rt.phase("m") is Phase.PENDING, "nothing known yet: pending"
        dw = rt.dual_write("m", {"name": "full_name"})
        assert dw.write({"name": "A"}) == {"name": "A"}
        assert wait_until(lambda: source.attempts >= 4)
        failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(failures) == 1 and "database connection failed" in failures[0].getMessage()
        source.down = False
        assert wait_until(lambda: rt.phase("m") is Phase.DUAL_WRITE)
        assert dw.write({"name": "A"}) == {"name": "A", "full_name": "A"}
        assert wait_until(lambda: len(instances(dsn)) == 1)
        assert any("works again" in r.getMessage() for r in caplog.records)
        # and down again: the cache holds, nothing raises
        source.down = True
        terminate_runtime_backends(dsn, "switched")
        set_phase(dsn, "m", Phase.BACKFILL, notify=False)
        time.sleep(0.3)
        assert rt.phase("m") in (Phase.DUAL_WRITE, Phase.BACKFILL)
        assert dw.read_column("name") == "name"


# -- sources ---------------------------------------------------------------------


def test_psycopg_pool_source(dsn, runtime_factory):
    from psycopg_pool import ConnectionPool

    ensure_state(dsn)
    with ConnectionPool(dsn, min_size=1, max_size=1, open=True) as pool:
        runtime_factory(pool, version="pool")
        assert wait_until(lambda: [r["version"] for r in instances(dsn)] == ["pool"])
        with pool.connection(timeout=5) as conn:  # its only connection is still the app's
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_sqlalchemy_engine_source(db_url, dsn, runtime_factory):
    import sqlalchemy as sa

    ensure_state(dsn)
    set_phase(dsn, "m", Phase.EXPAND)
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        rt = runtime_factory(engine, version="engine")
        assert rt.phase("m") is Phase.EXPAND
        assert wait_until(lambda: [r["version"] for r in instances(dsn)] == ["engine"])
    finally:
        engine.dispose()


def test_bad_arguments_are_refused_early(dsn):
    with pytest.raises(ValueError, match="schema"):
        Runtime(dsn, app="a", version="1", schema="x; drop")
    with pytest.raises(TypeError, match="DSN string"):
        Runtime(42, app="a", version="1")
    with pytest.raises(ValueError, match="app and version"):
        Runtime(dsn, app="", version="1")


# -- threads and fork -------------------------------------------------------------


def test_many_threads_compare_and_read_while_phases_change(dsn, runtime_factory):
    ensure_state(dsn)
    set_phase(dsn, "m", Phase.BACKFILL)
    rt = runtime_factory()
    dw = rt.dual_write("m", {"name": "full_name"})
    errors: list[BaseException] = []

    def request_loop() -> None:
        try:
            for i in range(2000):
                dw.compare({"name": "x", "full_name": "x" if i % 100 else "y"})
                assert dw.read_column("name") == "name"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=request_loop) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rt.send_heartbeat_soon()
    expected = {"compared": 12000, "mismatched": 120, "phase": "backfill"}

    def reported() -> dict[str, Any]:
        rows = instances(dsn)
        counts = rows[0]["info"]["shadow_reads"].get("m", {}) if rows else {}
        return {k: counts.get(k) for k in expected}

    assert wait_until(lambda: reported() == expected), reported()


@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_fork_restarts_heartbeats_in_the_child(dsn, runtime_factory):
    ensure_state(dsn)
    set_phase(dsn, "m", Phase.EXPAND)
    rt = runtime_factory(version="4.2", poll_interval=3600)
    assert wait_until(lambda: len(instances(dsn)) == 1)
    parent_id = rt.instance_id
    to_parent_r, to_parent_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, wait for a phase change, report, leave
        code = 1
        try:
            os.close(to_parent_r)
            os.close(go_w)
            out = os.fdopen(to_parent_w, "w")
            out.write(json.dumps({"id": rt.instance_id, "phase": rt.phase("m").value}) + "\n")
            out.flush()
            os.read(go_r, 1)
            seen = wait_until(lambda: rt.phase("m") is Phase.DUAL_WRITE, timeout=30)
            out.write(json.dumps({"seen": seen, "connected": rt.connected}) + "\n")
            out.flush()
            rt.stop()
            code = 0
        finally:
            os._exit(code)
    os.close(to_parent_w)
    os.close(go_r)
    with os.fdopen(to_parent_r) as from_child:
        first = json.loads(from_child.readline())
        assert first["phase"] == "expand", "the child inherits the cache"
        assert first["id"] == f"{rt.host}:{pid}" != parent_id
        assert wait_until(
            lambda: {r["instance_id"] for r in instances(dsn)} == {parent_id, first["id"]}
        )
        assert {r["pid"] for r in instances(dsn)} == {os.getpid(), pid}
        set_phase(dsn, "m", Phase.DUAL_WRITE)
        os.write(go_w, b"g")
        os.close(go_w)
        second = json.loads(from_child.readline())
    assert second == {"seen": True, "connected": True}
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert [r["instance_id"] for r in instances(dsn)] == [parent_id], "the child removed its row"
    # the parent's connection survived the child (never closed there)
    assert wait_until(lambda: rt.phase("m") is Phase.DUAL_WRITE)
    before = instances(dsn)[0]["last_seen"]
    assert wait_until(lambda: instances(dsn)[0]["last_seen"] > before)
    assert rt.connected
