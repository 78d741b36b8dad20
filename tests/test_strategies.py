"""Deployment strategies end to end over the users.name -> full_name rename: rolling, canary, blue-green.

Each ships shop 1.5 (writes both columns) and then 2.0 (reads and writes
full_name only) over a fleet of real instances (connections named
``shop@VERSION``, heartbeats from `zdmigrate.runtime`), with `phase advance`,
`gate` and `fleet retire` where a pipeline runs them (docs/deployments.md).
In each: not one failed request; contract refused at every point where an old
instance is live and accepted right after the last one leaves; the gate refuses
2.0 before switch-read and the old versions after contract; every row is what
the shop wrote.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests import sim
from tests.helpers import settings_for
from zdmigrate import engine
from zdmigrate.phases import Phase

pytestmark = pytest.mark.slow

SESSION_TTL = 1  # seconds a vanished app@version session still counts
STEP_REQUESTS = 30  # requests the fleet sends between two steps of a rollout


def _setup(tmp_path: Path, db_url: str, dsn: str) -> tuple[sim.Pipeline, sim.Model]:
    folder = sim.shop_migrations(tmp_path)
    settings = settings_for(db_url, folder).with_(
        extra={"fleet": {"session_ttl": SESSION_TTL}})
    engine.advance(settings, "0001_create_users")
    model = sim.Model()
    model.seed(dsn, 300)
    return sim.Pipeline(settings, dsn), model


def _before_switch_read(pipe: sim.Pipeline, where: str) -> None:
    """Mid deploy of 1.5: contract refused, 2.0 may not go out yet, 1.5 may."""
    pipe.contract_refused(where)
    assert not pipe.gate(sim.NEW), where
    assert pipe.gate(sim.DUAL), where


def _after_contract(pipe: sim.Pipeline) -> None:
    assert pipe.gate(sim.NEW)
    assert not pipe.gate(sim.DUAL) and not pipe.gate(sim.OLD)


def _finish(fleet: sim.Fleet) -> None:
    fleet.wait_for_requests(STEP_REQUESTS)
    fleet.stop_all()
    assert fleet.errors() == [] and fleet.wrong() == []
    assert fleet.requests() > 200


def test_rolling_update(tmp_path: Path, db_url: str, dsn: str) -> None:
    """Kubernetes' default: one instance at a time (maxSurge 1, maxUnavailable 0)."""
    pipe, model = _setup(tmp_path, db_url, dsn)
    with sim.running_fleet(db_url, model) as fleet:
        fleet.start(sim.OLD, 3)
        # deploy 1: shop 1.5; the init Job runs expand before the first pod starts
        assert pipe.gate(sim.DUAL)
        pipe.advance(Phase.EXPAND)
        for n, old in enumerate(fleet.of(sim.OLD)):
            fleet.start(sim.DUAL)
            fleet.wait_for_requests(STEP_REQUESTS)
            _before_switch_read(pipe, f"1.5 surge pod {n + 1} up")
            fleet.stop(old)
            _before_switch_read(pipe, f"1.4 pod {n + 1} gone")
        # after the rollout: the post-deploy Job backfills and switches reads
        pipe.advance(Phase.SWITCH_READ)
        pipe.contract_refused("1.5 still runs")
        # deploy 2: shop 2.0
        assert pipe.gate(sim.NEW)
        old_pods = fleet.of(sim.DUAL)
        for n, old in enumerate(old_pods):
            fleet.start(sim.NEW)
            fleet.wait_for_requests(STEP_REQUESTS)
            pipe.contract_refused(f"2.0 pod {n + 1} up, 1.5 pods left: {len(old_pods) - n}")
            fleet.stop(old)
            if n < len(old_pods) - 1:
                pipe.contract_refused(f"1.5 pod {n + 1} gone")
        # `kubectl rollout status` returned: the pipeline retires 1.5, then contracts
        pipe.retire(sim.DUAL)
        assert pipe.live_versions() == {sim.NEW}
        pipe.contract()
        _after_contract(pipe)
        _finish(fleet)
    model.check(dsn)


def _canary(fleet: sim.Fleet, pipe: sim.Pipeline, old: str, new: str,
            weights: list[float], total_rate: float = 60.0) -> None:
    """Argo Rollouts setWeight steps: one canary pod, its share of the traffic grows."""
    stable = fleet.of(old)
    canary = fleet.start(new, rate=0)[0]
    for weight in weights:
        canary.rate = total_rate * weight
        for pod in stable:
            pod.rate = total_rate * (1 - weight) / len(stable)
        fleet.wait_for_requests(STEP_REQUESTS)
        pipe.contract_refused(f"{new} canary at {weight:.0%}")  # analysis step
        if new == sim.DUAL:
            assert not pipe.gate(sim.NEW)
    # promotion: the new ReplicaSet scales up, the stable one down
    fleet.start(new, len(stable) - 1, rate=total_rate / len(stable))
    canary.rate = total_rate / len(stable)
    for pod in stable[:-1]:
        fleet.stop(pod)
        pipe.contract_refused(f"{new} promoted, {old} scaling down")
    fleet.stop(stable[-1])


def test_canary(tmp_path: Path, db_url: str, dsn: str) -> None:
    """1%, 10%, 50% of the traffic on the canary, for as long as the analysis wants."""
    pipe, model = _setup(tmp_path, db_url, dsn)
    with sim.running_fleet(db_url, model) as fleet:
        fleet.start(sim.OLD, 3)
        assert pipe.gate(sim.DUAL)
        pipe.advance(Phase.EXPAND)  # pre-promotion: before the canary gets traffic
        _canary(fleet, pipe, sim.OLD, sim.DUAL, [0.01, 0.1, 0.5])
        pipe.advance(Phase.SWITCH_READ)  # post-promotion, once 1.5 is fully out
        assert pipe.gate(sim.NEW)
        _canary(fleet, pipe, sim.DUAL, sim.NEW, [0.01, 0.1, 0.5])
        # the last 1.5 pod left: contract goes through as soon as its sessions are forgotten
        time.sleep(SESSION_TTL + 0.2)
        assert pipe.live_versions() == {sim.NEW}
        pipe.contract()
        _after_contract(pipe)
        _finish(fleet)
    model.check(dsn)


@pytest.mark.parametrize("ending", ["disconnects", "ttl expires"])
def test_blue_green(tmp_path: Path, db_url: str, dsn: str, ending: str) -> None:
    """Two colours; the idle one keeps its pools open until it is torn down."""
    pipe, model = _setup(tmp_path, db_url, dsn)
    rate = 20.0
    with sim.running_fleet(db_url, model, ttl=4) as fleet:
        blue = fleet.start(sim.OLD, 2, rate=rate)
        # deploy 1: green runs 1.5, warmed up without traffic, then the router flips
        assert pipe.gate(sim.DUAL)
        pipe.advance(Phase.EXPAND)
        green = fleet.start(sim.DUAL, 2, rate=0)
        _before_switch_read(pipe, "green up, blue serving")
        for pod in green:
            pod.rate = rate
        for pod in blue:
            pod.rate = 0
        fleet.wait_for_requests(STEP_REQUESTS)
        _before_switch_read(pipe, "flipped to green, blue idle")
        pipe.advance(Phase.SWITCH_READ)
        # deploy 2: blue is torn down and comes back as 2.0, then the router flips again
        for pod in blue:
            fleet.stop(pod)
        assert pipe.gate(sim.NEW)
        blue = fleet.start(sim.NEW, 2, rate=0)
        pipe.contract_refused("blue (2.0) up, green serving")
        for pod in blue:
            pod.rate = rate
        for pod in green:
            pod.rate = 0
        # green (1.5) is idle but connected: it keeps counting, past every TTL
        for check in range(3):
            fleet.wait_for_requests(STEP_REQUESTS)
            pipe.contract_refused(f"green idle, check {check + 1}")
        assert all(pod.version == sim.NEW for pod in fleet.live if pod.rate > 0)
        if ending == "disconnects":
            for pod in green:
                fleet.stop(pod)  # torn down: pools closed, heartbeat rows removed
            time.sleep(SESSION_TTL + 0.2)  # its sessions are remembered for session_ttl
        else:
            for pod in green:
                fleet.stop(pod, vanish=True)  # its hosts die: the heartbeat rows stay
            pipe.contract_refused("green vanished, its heartbeats not yet expired")
            sim.wait_until(lambda: sim.DUAL not in pipe.live_versions(), timeout=30,
                           what="green's heartbeat TTL to run out")
        assert pipe.live_versions() == {sim.NEW}
        pipe.contract()
        _after_contract(pipe)
        _finish(fleet)
    model.check(dsn)
