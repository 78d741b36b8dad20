"""A role with only the runtime's grants cannot forge the fleet (issue 14 item 6).

Real roles with exactly the grants docs/security.md lists for the runtime
(`state.schema.runtime_grants`), real sessions in pg_stat_activity.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.test_runtime import FAST, instances, wait_until
from zdmigrate.fleet.sources import live_instances, session_instances
from zdmigrate.runtime import Runtime
from zdmigrate.state import Store
from zdmigrate.state.schema import grant_runtime

SCHEMA = "zdmigrate"


@pytest.fixture
def runtime_role(dsn: str, dbname: str) -> Iterator[str]:
    """A login role with the runtime's grants only (roles are per cluster: named per test)."""
    role = f"rt_{dbname}"[:63]
    with psycopg.connect(dsn, autocommit=True) as conn:
        Store(conn, SCHEMA).ensure_schema()
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        grant_runtime(conn, SCHEMA, role)
    yield role
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                     [role])
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def as_role(dsn: str, role: str, **extra: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(make_conninfo(dsn, user=role, **extra), autocommit=True)


def shop_versions(dsn: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {i.version for i in live_instances(conn, SCHEMA, app="shop")}


def declare_old_version(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO zdmigrate.instances (app, instance_id, version, source, ttl_seconds) "
            "VALUES ('shop', 'declared:1.4#1', '1.4', 'declared', 3600)"
        )


def test_the_runtime_works_with_its_minimal_grants(dsn, runtime_role):
    with Runtime(make_conninfo(dsn, user=runtime_role), app="shop", version="2.0",
                 **FAST) as rt:
        assert wait_until(lambda: [r["version"] for r in instances(dsn)] == ["2.0"])
        assert rt.connected
    assert instances(dsn) == []  # stop removed its own row


def test_the_runtime_role_cannot_write_the_tables(dsn, runtime_role):
    declare_old_version(dsn)
    with as_role(dsn, runtime_role) as conn:
        for statement in [
            "DELETE FROM zdmigrate.instances WHERE source = 'declared'",
            "UPDATE zdmigrate.instances SET version = '2.0'",
            "INSERT INTO zdmigrate.instances (app, instance_id, version, source) "
            "VALUES ('shop', 'session:local:1.4', '2.0', 'heartbeat')",
            "UPDATE zdmigrate.migrations SET phase = 'contract'",
        ]:
            with pytest.raises(pg_errors.InsufficientPrivilege):
                conn.execute(statement)
    assert shop_versions(dsn) == {"1.4"}


def test_a_heartbeat_cannot_replace_or_shorten_another_instance(dsn, runtime_role):
    declare_old_version(dsn)
    heartbeat = "SELECT zdmigrate.runtime_heartbeat(%s, %s, %s, 'h', 1, %s, '{}')"
    # web-1 runs shop 1.4: its runtime's connection stays open
    with as_role(dsn, runtime_role) as old_app, as_role(dsn, runtime_role) as conn:
        old_app.execute(heartbeat, ["shop", "web-1", "1.4", 60])
        for args in [
            ("shop", "declared:1.4#1", "2.0", 60),  # a declared row
            ("shop", "session:local:1.4", "2.0", 60),  # a remembered session's id
            ("shop", "web-1", "2.0", 60),  # another instance's live row, new version
        ]:
            with pytest.raises(pg_errors.InsufficientPrivilege):
                conn.execute(heartbeat, list(args))
        # same version, shorter TTL: accepted, but the row still counts as long as before
        conn.execute(heartbeat, ["shop", "web-1", "1.4", 1])
        # unregistering a row this connection did not write removes nothing
        assert conn.execute(
            "SELECT zdmigrate.runtime_unregister('shop', 'web-1')"
        ).fetchone() == (False,)
    rows = {r["instance_id"]: r for r in instances(dsn)}
    assert rows["web-1"]["version"] == "1.4" and rows["web-1"]["ttl_seconds"] >= 55
    assert shop_versions(dsn) == {"1.4"}


def test_a_stored_row_never_hides_a_connected_session(dsn, runtime_role):
    with as_role(dsn, runtime_role, application_name="shop@1.4"):
        with psycopg.connect(dsn, autocommit=True) as owner:
            (session,) = session_instances(owner)
            # forged by whoever could write the table: same id, new version
            owner.execute(
                "INSERT INTO zdmigrate.instances (app, instance_id, version, source, "
                "ttl_seconds) VALUES ('shop', %s, '2.0', 'heartbeat', 3600)",
                [session.instance_id],
            )
        assert "1.4" in shop_versions(dsn)


def test_docs_security_lists_exactly_the_runtime_grants():
    from pathlib import Path

    from zdmigrate.state.schema import runtime_grants

    doc = " ".join((Path(__file__).resolve().parents[1] / "docs" / "security.md").read_text()
                   .split())
    for statement in runtime_grants("zdmigrate", "app_runtime"):
        text = statement.as_string(None).replace('"', "")
        assert " ".join(text.split()) + ";" in doc
