"""The fleet: live instances from heartbeats, sessions and declarations, merged, with TTLs."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
from psycopg import sql

from zdmigrate import fleet
from zdmigrate.config import Settings
from zdmigrate.errors import BadInput, ConfigError
from zdmigrate.fleet import FleetSettings
from zdmigrate.state import Store

SCHEMA = "zdmigrate"


def age(conn: psycopg.Connection[tuple[object, ...]], seconds: int, **where: str) -> None:
    """Move last_seen into the past (TTL tests without sleeping)."""
    conds = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in where.items()
    )
    conn.execute(
        sql.SQL("UPDATE zdmigrate.instances SET last_seen = now() - make_interval(secs => {}) "
                "WHERE {}").format(sql.Literal(seconds), conds)
    )


def test_heartbeat_is_listed_until_its_ttl_runs_out(conn: psycopg.Connection) -> None:
    hb = fleet.heartbeat(conn, SCHEMA, app="shop", version="1.4", instance_id="web-1", ttl=60,
                         host="web-1.internal", pid=4242)
    assert (hb.app, hb.version, hb.source, hb.ttl_seconds) == ("shop", "1.4", "heartbeat", 60)
    [live] = fleet.live_instances(conn, SCHEMA)
    assert (live.instance_id, live.host, live.pid) == ("web-1", "web-1.internal", 4242)
    assert live.expires_at > live.last_seen

    age(conn, 59, instance_id="web-1")
    assert [i.instance_id for i in fleet.live_instances(conn, SCHEMA)] == ["web-1"]
    age(conn, 61, instance_id="web-1")
    assert fleet.live_instances(conn, SCHEMA) == []


def test_heartbeat_again_refreshes_and_keeps_started_at(conn: psycopg.Connection) -> None:
    first = fleet.heartbeat(conn, SCHEMA, app="shop", version="1.4", instance_id="web-1")
    age(conn, 50, instance_id="web-1")
    again = fleet.heartbeat(conn, SCHEMA, app="shop", version="1.4", instance_id="web-1")
    assert again.started_at == first.started_at
    assert again.last_seen > first.last_seen - __import__("datetime").timedelta(seconds=1)
    upgraded = fleet.heartbeat(conn, SCHEMA, app="shop", version="2.0", instance_id="web-1")
    assert upgraded.version == "2.0"
    assert upgraded.started_at is not None and first.started_at is not None
    assert upgraded.started_at >= first.started_at
    assert [i.version for i in fleet.live_instances(conn, SCHEMA)] == ["2.0"]


def test_stop_heartbeat_removes_the_instance_at_once(conn: psycopg.Connection) -> None:
    fleet.heartbeat(conn, SCHEMA, app="shop", version="1.4", instance_id="web-1")
    assert fleet.stop_heartbeat(conn, SCHEMA, app="shop", instance_id="web-1") is True
    assert fleet.live_instances(conn, SCHEMA) == []
    assert fleet.stop_heartbeat(conn, SCHEMA, app="shop", instance_id="web-1") is False


def test_open_sessions_with_application_name_are_live_instances(
    conn: psycopg.Connection, dsn: str
) -> None:
    with psycopg.connect(dsn, application_name="shop@1.4") as a, \
         psycopg.connect(dsn, application_name="shop@1.4") as b, \
         psycopg.connect(dsn, application_name="psql"):
        pids = sorted([a.info.backend_pid, b.info.backend_pid])
        [inst] = fleet.live_instances(conn, SCHEMA)
    assert (inst.app, inst.version, inst.source) == ("shop", "1.4", "session")
    assert inst.info["connections"] == 2
    assert inst.info["pids"] == pids


def test_a_session_that_left_still_counts_until_its_ttl(conn: psycopg.Connection, dsn: str) -> None:
    with psycopg.connect(dsn, application_name="shop@1.4") as app:
        pid = app.info.backend_pid
        fleet.live_instances(conn, SCHEMA)  # seen once, now remembered
    wait_until_backend_gone(conn, pid)  # a closed client's backend exits a moment later
    [inst] = fleet.live_instances(conn, SCHEMA)
    assert (inst.version, inst.source, inst.ttl_seconds) == ("1.4", "session", 300)
    age(conn, 301, source="session")
    assert fleet.live_instances(conn, SCHEMA) == []


def wait_until_backend_gone(conn: psycopg.Connection, pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
        if time.monotonic() > deadline:
            raise AssertionError(f"backend {pid} still in pg_stat_activity after {timeout}s")
        time.sleep(0.05)


def test_sessions_of_other_databases_do_not_count(conn: psycopg.Connection, pg_server) -> None:
    with psycopg.connect(pg_server.admin_dsn, application_name="shop@1.4"):
        assert fleet.live_instances(conn, SCHEMA) == []


def test_application_name_pattern_is_configurable(conn: psycopg.Connection, dsn: str) -> None:
    settings = Settings(extra={"fleet": {
        "application_name_pattern": r"^(?P<app>[a-z]+)/v(?P<version>[\d.]+)$",
        "session_ttl": "2min",
    }})
    fs = FleetSettings.from_settings(settings)
    assert fs.session_ttl == 120
    with psycopg.connect(dsn, application_name="shop/v2.1"), \
         psycopg.connect(dsn, application_name="shop@1.0"):
        [inst] = fleet.live_instances(conn, SCHEMA, fs)
    assert (inst.app, inst.version, inst.ttl_seconds) == ("shop", "2.1", 120)


@pytest.mark.parametrize(
    ("fleet_table", "message"),
    [
        ({"application_name_pattern": "(?P<app>.+)"}, "lacks the named group(s) version"),
        ({"application_name_pattern": "(?P<app"}, "is not a regex"),
        ({"session_ttl": "soon"}, "is not a duration"),
        ({"session_ttl": 0}, "must be more than 0 seconds"),
        ({"sesion_ttl": 5}, "unknown key 'sesion_ttl'"),
    ],
)
def test_bad_fleet_settings_are_config_errors(fleet_table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        FleetSettings.from_settings(Settings(extra={"fleet": fleet_table}))
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_declare_scales_refreshes_and_retire_removes(conn: psycopg.Connection) -> None:
    rows = fleet.declare(conn, SCHEMA, app="shop", version="1.4", instances=3, ttl=600)
    assert [r.instance_id for r in rows] == [
        "declared:1.4#1", "declared:1.4#2", "declared:1.4#3"]
    fleet.declare(conn, SCHEMA, app="shop", version="2.0", instances=2)
    fleet.declare(conn, SCHEMA, app="shop", version="1.4", instances=1, ttl=600)
    live = fleet.live_instances(conn, SCHEMA)
    assert sorted((i.version, i.source) for i in live) == [
        ("1.4", "declared"), ("2.0", "declared"), ("2.0", "declared")]
    assert fleet.retire(conn, SCHEMA, app="shop", version="1.4") == 1
    assert {i.version for i in fleet.live_instances(conn, SCHEMA)} == {"2.0"}
    assert fleet.retire(conn, SCHEMA, app="shop", version="1.4") == 0


def test_declaration_expires_with_its_ttl(conn: psycopg.Connection) -> None:
    fleet.declare(conn, SCHEMA, app="shop", version="1.4", ttl=600)
    age(conn, 599, source="declared")
    assert len(fleet.live_instances(conn, SCHEMA)) == 1
    age(conn, 601, source="declared")
    assert fleet.live_instances(conn, SCHEMA) == []


def test_declare_needs_at_least_one_instance(conn: psycopg.Connection) -> None:
    with pytest.raises(BadInput, match="at least 1"):
        fleet.declare(conn, SCHEMA, app="shop", version="1.4", instances=0)


def test_retire_leaves_heartbeats_alone(conn: psycopg.Connection) -> None:
    fleet.heartbeat(conn, SCHEMA, app="shop", version="1.4", instance_id="web-1")
    fleet.declare(conn, SCHEMA, app="shop", version="1.4")
    assert fleet.retire(conn, SCHEMA, app="shop", version="1.4") == 1
    assert [i.source for i in fleet.live_instances(conn, SCHEMA)] == ["heartbeat"]


def test_three_sources_merge_sorted_by_app_and_version(conn: psycopg.Connection, dsn: str) -> None:
    fleet.heartbeat(conn, SCHEMA, app="shop", version="1.10", instance_id="web-1")
    fleet.declare(conn, SCHEMA, app="shop", version="1.9")
    fleet.heartbeat(conn, SCHEMA, app="admin", version="3.0", instance_id="adm-1")
    with psycopg.connect(dsn, application_name="shop@2.0"):
        live = fleet.live_instances(conn, SCHEMA)
        only_shop = fleet.live_instances(conn, SCHEMA, app="shop")
    assert [(i.app, i.version, i.source) for i in live] == [
        ("admin", "3.0", "heartbeat"),
        ("shop", "1.9", "declared"),
        ("shop", "1.10", "heartbeat"),
        ("shop", "2.0", "session"),
    ]
    assert {i.app for i in only_shop} == {"shop"}
    as_dict = live[0].as_dict()
    assert {"app", "version", "instance_id", "source", "last_seen", "expires_at"} <= set(as_dict)


def test_without_state_schema_sessions_are_still_seen(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn, \
         psycopg.connect(dsn, application_name="shop@1.4"):
        [inst] = fleet.live_instances(conn, SCHEMA)
        assert inst.source == "session"
        assert not Store(conn, SCHEMA).exists()


def test_a_read_only_role_without_pg_read_all_stats_sees_app_sessions(
    conn: psycopg.Connection, dsn: str, dbname: str
) -> None:
    """application_name is visible to every role; writing the memory needs rights."""
    role = f"zdm_ro_{uuid.uuid4().hex[:8]}"
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA zdmigrate TO {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA zdmigrate TO {}").format(
            sql.Identifier(role)))
        fleet.heartbeat(conn, SCHEMA, app="shop", version="2.0", instance_id="web-2")
        with psycopg.connect(dsn, application_name="shop@1.4"), \
             psycopg.connect(dsn, user=role) as ro:
            live = fleet.live_instances(ro, SCHEMA)
            assert ro.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
            ro.rollback()
        assert sorted((i.version, i.source) for i in live) == [
            ("1.4", "session"), ("2.0", "heartbeat")]
        [session] = [i for i in live if i.source == "session"]
        assert session.host is None  # client address hidden without pg_read_all_stats
        # nothing was remembered: the role may not write
        assert [i.source for i in fleet.stored_instances(conn, SCHEMA)] == ["heartbeat"]
    finally:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_concurrent_heartbeats_and_observers_do_not_conflict(
    conn: psycopg.Connection, dsn: str
) -> None:
    errors: list[BaseException] = []

    def beat(n: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True, application_name=f"shop@1.{n % 2}") as c:
                for _ in range(20):
                    fleet.heartbeat(c, SCHEMA, app="shop", version=f"1.{n % 2}",
                                    instance_id=f"web-{n % 3}")
                    fleet.live_instances(c, SCHEMA)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=beat, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    heartbeats = [i for i in fleet.stored_instances(conn, SCHEMA) if i.source == "heartbeat"]
    assert sorted(i.instance_id for i in heartbeats) == ["web-0", "web-1", "web-2"]
