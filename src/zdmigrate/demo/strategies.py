"""Deployment strategies as data: the fleet counts and traffic weights of each deploy step.

- ``rolling`` (the Kubernetes default): instances are replaced one at a time;
  traffic follows the instances.
- ``canary``: one new instance takes 10% of traffic, then two take 50%, then the
  new version takes everything and the old one is scaled down. The old version
  is live through most of it.
- ``blue-green``: green (new) starts beside blue (old) with no traffic, traffic
  flips to green, blue stays connected and idle (pools open, heartbeating) until
  it is torn down.

A step never says how to run a migration: the pipeline decides that between steps.
"""

from __future__ import annotations

from dataclasses import dataclass

STRATEGIES = ("rolling", "canary", "blue-green")

#: Instances of each version at full size, per strategy.
FLEET_SIZE = {"rolling": 3, "canary": 4, "blue-green": 3}


@dataclass(frozen=True)
class DeployStep:
    """Scale to `counts` (version -> instances) and route `weights` (version -> share)."""

    description: str
    counts: dict[str, int]
    weights: dict[str, float]


def release_steps(strategy: str, old: str, new: str, size: int | None = None) -> list[DeployStep]:
    """The steps that replace `old` by `new` under `strategy`; the last one leaves no `old`."""
    n = size or FLEET_SIZE[strategy]
    if strategy == "rolling":
        return [
            DeployStep(
                f"rolling update: {i} of {n} instances on {new}",
                {old: n - i, new: i}, {old: float(n - i), new: float(i)},
            )
            for i in range(1, n + 1)
        ]
    if strategy == "canary":
        return [
            DeployStep(f"canary: 1 instance of {new} takes 10% of traffic",
                       {old: n, new: 1}, {old: 0.9, new: 0.1}),
            DeployStep(f"canary: 2 instances of {new} take 50% of traffic",
                       {old: n, new: 2}, {old: 0.5, new: 0.5}),
            DeployStep(f"canary promoted: {n} instances of {new} take all traffic, {old} scaled down",
                       {old: 0, new: n}, {new: 1.0}),
        ]
    if strategy == "blue-green":
        return [
            DeployStep(f"green ({new}) up beside blue ({old}), no traffic yet",
                       {old: n, new: n}, {old: 1.0, new: 0.0}),
            DeployStep(f"switch: all traffic to green ({new}); blue ({old}) idle but connected",
                       {old: n, new: n}, {old: 0.0, new: 1.0}),
            DeployStep(f"blue ({old}) torn down", {old: 0, new: n}, {new: 1.0}),
        ]
    raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")


def initial_step(strategy: str, version: str, size: int | None = None) -> DeployStep:
    n = size or FLEET_SIZE[strategy]
    return DeployStep(f"{n} instances of {version} serve all traffic", {version: n}, {version: 1.0})
