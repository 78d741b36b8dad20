"""The runtime under hostile conditions: forged notifications, a hung connection, outages."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.tcp_proxy import TcpProxy
from tests.test_runtime import FAST, ensure_state, set_phase, wait_until
from zdmigrate.phases import Phase
from zdmigrate.runtime import Runtime
from zdmigrate.state import migrations as state_migrations


@pytest.fixture
def proxy(dsn: str) -> Iterator[TcpProxy]:
    params = conninfo_to_dict(dsn)
    host = str(params.get("host") or "/tmp")
    server = TcpProxy(host, int(params.get("port") or 5432))
    yield server
    server.close()


def through(dsn: str, proxy: TcpProxy) -> str:
    return make_conninfo(dsn, host="127.0.0.1", port=proxy.port, hostaddr="")


def test_a_forged_notify_is_only_a_hint_to_read_the_table(dsn):
    ensure_state(dsn)
    set_phase(dsn, "0001_real", Phase.EXPAND, notify=False)
    set_phase(dsn, "0002_other", Phase.PENDING, notify=False)
    # polling far apart: whatever the runtime shows comes from the notifications
    with Runtime(dsn, app="shop", version="1.4", **{**FAST, "poll_interval": 300}) as rt:
        assert rt.phase("0001_real") is Phase.EXPAND
        with psycopg.connect(dsn, autocommit=True) as attacker:
            attacker.execute(
                "SELECT pg_notify(%s, %s)",
                [state_migrations.notify_channel("zdmigrate"),
                 json.dumps({"migration": "0001_real", "phase": "contract"})],
            )
        # a real change after the forged one: once it is seen, the forgery was handled
        set_phase(dsn, "0002_other", Phase.EXPAND)
        assert wait_until(lambda: rt.phase("0002_other") is Phase.EXPAND)
        assert rt.phase("0001_real") is Phase.EXPAND


def test_a_hung_connection_is_noticed_and_replaced(dsn, proxy):
    ensure_state(dsn)
    set_phase(dsn, "0001", Phase.SWITCH_READ, notify=False)
    rt = Runtime(through(dsn, proxy), app="shop", version="2.0",
                 **{**FAST, "query_timeout": 1.0})
    rt.start()
    try:
        assert rt.connected and rt.phase("0001") is Phase.SWITCH_READ
        proxy.hang()
        set_phase(dsn, "0001", Phase.CONTRACT)
        # silence on its own periodic query: the runtime gives the connection up
        assert wait_until(lambda: not rt.connected, timeout=30)
        assert rt.phase("0001") is Phase.SWITCH_READ  # the last known phase is kept
        proxy.resume()
        assert wait_until(lambda: rt.phase("0001") is Phase.CONTRACT, timeout=30)
        assert rt.connected
    finally:
        rt.stop()


def test_stop_does_not_wait_for_a_hung_query(dsn, proxy):
    ensure_state(dsn)
    rt = Runtime(through(dsn, proxy), app="shop", version="2.0",
                 **{**FAST, "poll_interval": 0.05, "query_timeout": 60.0})
    rt.start()
    worker = rt._worker
    assert worker is not None and rt.connected
    proxy.hang()
    # the next poll blocks on the hung connection; the watchdog would wait 60 s
    assert wait_until(lambda: worker._watchdog._fd is not None)
    rt.stop(timeout=10.0)
    assert not worker._thread.is_alive()


def test_reconnect_delay_starts_again_after_a_successful_connection(dsn, proxy):
    ensure_state(dsn)
    rt = Runtime(through(dsn, proxy), app="shop", version="2.0",
                 **{**FAST, "retry_interval": 0.05, "retry_interval_max": 0.4})
    rt.start()
    try:
        assert rt.connected
        proxy.cut(refuse=True)  # an outage: every attempt fails
        assert wait_until(lambda: rt.reconnect_delay >= 0.4, timeout=30)
        proxy.resume()
        # connected again: the next outage starts from retry_interval, not from 0.4 s
        assert wait_until(lambda: rt.connected and rt.reconnect_delay == 0.05, timeout=30)
    finally:
        rt.stop()
