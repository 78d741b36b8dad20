"""Compat checks on the live fleet: backfill needs dual-writers, contract needs no old version."""

from __future__ import annotations

import psycopg

from zdmigrate import fleet
from zdmigrate.compat import parse_compat
from zdmigrate.phases import Phase
from zdmigrate.steps import BackfillStep, SQLStep

SCHEMA = "zdmigrate"
COMPAT = parse_compat(
    {"shop": {"dual_write_from": "1.5", "read_new_from": "2.0", "old_unused_from": "2.0"}},
    "0002_rename.py",
)


def blockers(conn: psycopg.Connection, target: Phase, **kw: bool) -> list:
    return fleet.phase_blockers(
        fleet.live_instances(conn, SCHEMA), migration_id="0002_rename", compat=COMPAT,
        target=target, **kw,
    )


def test_contract_refused_while_old_heartbeat_lives_then_allowed(conn: psycopg.Connection) -> None:
    fleet.heartbeat(conn, SCHEMA, app="shop", version="2.0", instance_id="web-2")
    fleet.heartbeat(conn, SCHEMA, app="shop", version="1.9", instance_id="web-1")
    [b] = blockers(conn, Phase.CONTRACT)
    assert b.check == "fleet-old-version"
    for part in ("0002_rename", "shop 1.9", "instance web-1", "source heartbeat", "last seen",
                 "below old_unused_from 2.0", "upgrade or stop"):
        assert part in b.message
    assert b.details["instance_id"] == "web-1"
    assert b.details["source"] == "heartbeat"
    assert b.details["version"] == "1.9"
    assert "last_seen" in b.details
    fleet.stop_heartbeat(conn, SCHEMA, app="shop", instance_id="web-1")
    assert blockers(conn, Phase.CONTRACT) == []


def test_contract_refused_while_old_heartbeat_lives_until_ttl(conn: psycopg.Connection) -> None:
    fleet.heartbeat(conn, SCHEMA, app="shop", version="2.0", instance_id="web-2")
    fleet.heartbeat(conn, SCHEMA, app="shop", version="1.9", instance_id="web-1", ttl=30)
    assert len(blockers(conn, Phase.CONTRACT)) == 1
    conn.execute("UPDATE zdmigrate.instances SET last_seen = now() - interval '31 seconds' "
                 "WHERE instance_id = 'web-1'")
    assert blockers(conn, Phase.CONTRACT) == []


def test_contract_refused_while_old_session_connected_then_allowed(
    conn: psycopg.Connection, dsn: str
) -> None:
    with psycopg.connect(dsn, application_name="shop@2.0"), \
         psycopg.connect(dsn, application_name="shop@1.9"):
        [b] = blockers(conn, Phase.CONTRACT)
        assert b.details["source"] == "session"
        assert "shop 1.9" in b.message and "application_name shop@1.9" in b.message
    # gone, but remembered for its TTL: still refused (fail safe)
    assert [x.details["version"] for x in blockers(conn, Phase.CONTRACT)] == ["1.9"]
    conn.execute("UPDATE zdmigrate.instances SET last_seen = now() - interval '1 hour' "
                 "WHERE source = 'session'")
    # both left: no data at all is not proven
    assert [x.check for x in blockers(conn, Phase.CONTRACT)] == ["fleet-not-proven"]
    with psycopg.connect(dsn, application_name="shop@2.0"):
        assert blockers(conn, Phase.CONTRACT) == []


def test_contract_refused_while_old_version_declared_then_allowed(conn: psycopg.Connection) -> None:
    fleet.declare(conn, SCHEMA, app="shop", version="1.9", instances=2)
    fleet.declare(conn, SCHEMA, app="shop", version="2.0", instances=2)
    found = blockers(conn, Phase.CONTRACT)
    assert [b.details["instance_id"] for b in found] == ["declared:1.9#1", "declared:1.9#2"]
    assert "fleet retire --app shop --version 1.9" in found[0].message
    fleet.retire(conn, SCHEMA, app="shop", version="1.9")
    assert blockers(conn, Phase.CONTRACT) == []


def test_contract_without_fleet_data_is_not_proven(conn: psycopg.Connection) -> None:
    fleet.heartbeat(conn, SCHEMA, app="other-app", version="9.9", instance_id="x")
    [b] = blockers(conn, Phase.CONTRACT)
    assert b.check == "fleet-not-proven"
    assert "no fleet data for app 'shop'" in b.message
    assert "--override-fleet-check" in b.message


def test_unparseable_version_counts_as_too_old(conn: psycopg.Connection) -> None:
    fleet.heartbeat(conn, SCHEMA, app="shop", version="deadbeef", instance_id="web-1")
    [b] = blockers(conn, Phase.CONTRACT)
    assert "not a PEP 440 version" in b.message


def test_backfill_needs_every_instance_to_dual_write(conn: psycopg.Connection) -> None:
    fleet.heartbeat(conn, SCHEMA, app="shop", version="1.4", instance_id="web-1")
    fleet.heartbeat(conn, SCHEMA, app="shop", version="1.5", instance_id="web-2")
    [b] = blockers(conn, Phase.BACKFILL)
    assert b.check == "fleet-dual-write"
    assert "shop 1.4" in b.message and "below dual_write_from 1.5" in b.message
    # sync triggers do the dual write: no app version matters
    assert blockers(conn, Phase.BACKFILL, app_dual_writes_needed=False) == []
    # other phases have no fleet rule
    assert blockers(conn, Phase.DUAL_WRITE) == []
    assert blockers(conn, Phase.SWITCH_READ) == []


def test_backfill_without_fleet_data_is_not_refused(conn: psycopg.Connection) -> None:
    assert blockers(conn, Phase.BACKFILL) == []


def test_app_without_old_unused_from_uses_its_highest_threshold(conn: psycopg.Connection) -> None:
    compat = parse_compat({"shop": {"read_new_from": "2.0"}}, "m.py")
    fleet.heartbeat(conn, SCHEMA, app="shop", version="1.9", instance_id="web-1")
    [b] = fleet.phase_blockers(fleet.live_instances(conn, SCHEMA), migration_id="m",
                               compat=compat, target=Phase.CONTRACT)
    assert "below read_new_from 2.0" in b.message


def test_sync_triggers_make_app_dual_writes_unnecessary() -> None:
    trigger = SQLStep("CREATE OR REPLACE TRIGGER users_sync BEFORE INSERT OR UPDATE ON users "
                      "FOR EACH ROW EXECUTE FUNCTION users_sync()")
    plain = SQLStep("ALTER TABLE users ADD COLUMN full_name text")
    backfill = BackfillStep("users", {"full_name": "name"})
    assert fleet.needs_app_dual_writes({Phase.EXPAND: [plain], Phase.BACKFILL: [backfill]})
    assert not fleet.needs_app_dual_writes({Phase.EXPAND: [plain, trigger]})
    assert not fleet.needs_app_dual_writes({Phase.DUAL_WRITE: [trigger]})
    # a trigger made only in contract does not dual-write during backfill
    assert fleet.needs_app_dual_writes({Phase.CONTRACT: [trigger]})

    class SyncOp:
        sync_triggers = True

    assert not fleet.needs_app_dual_writes({}, [SyncOp()])
