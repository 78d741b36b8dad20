"""The deploy pipeline the demo runs: gate, pre-deploy phases, deploy steps, post-deploy phases.

Releases go out under the chosen strategy while the fleet serves traffic:

1. shop 1.5 (dual-writing) replaces 1.4. Before it, every migration that can
   runs ``expand``; after it, ``dual-write`` and ``backfill``.
2. Then new versions (new shapes only), as many as the migrations' ``compat``
   asks for: each is the highest version the started migrations name, below the
   ``read_new_from`` of any migration not started yet. Before each, the pipeline
   asks the gate (which refuses while a migration it reads is not at
   switch-read), runs switch-read, and asks again. After each deploy step while
   an older instance is live, it tries ``contract`` and zdmigrate refuses. Once
   the old version is torn down and disconnected, ``fleet retire`` drops it from
   the fleet, and every migration that can goes through contract; the next
   migrations go as far as switch-read.

A migration whose operations need the schema that an earlier contract leaves
(0019 drops a table 0016 renames at contract) waits for that contract.

Warning: `engine.advance` takes zdmigrate's run lock on the database; nothing
else may run zdmigrate phases on the demo's database meanwhile.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zdmigrate import db, engine, fleet
from zdmigrate import gate as gate_module
from zdmigrate.config import Settings
from zdmigrate.demo import shop
from zdmigrate.demo.instances import Fleet, Router
from zdmigrate.demo.progress import DemoProgress
from zdmigrate.demo.strategies import DeployStep, initial_step, release_steps
from zdmigrate.errors import Blocker, OperationInvalid, PhaseRefused, ZdmigrateError
from zdmigrate.migration import Migration, load_migrations
from zdmigrate.phases import Phase

if TYPE_CHECKING:
    from packaging.version import Version


class DemoFailed(ZdmigrateError):
    """The pipeline could not go on (a gate or phase said no where it should not have)."""


@dataclass(frozen=True)
class ContractRefusal:
    """Contract refused while old app versions were live: the proof the fleet check holds."""

    migration: str
    during: str
    blockers: list[Blocker]

    @property
    def old_versions(self) -> list[str]:
        return sorted({str(b.details.get("version")) for b in self.blockers
                       if b.details.get("version")})

    def as_dict(self) -> dict[str, Any]:
        return {"migration": self.migration, "during": self.during,
                "old_versions": self.old_versions,
                "blockers": [b.as_dict() for b in self.blockers]}


def refusal_reason(blockers: list[Blocker]) -> str:
    """Why contract was refused, counted as the view's table counts: instances (heartbeats)
    per old version, and the connection groups seen (sessions) apart."""
    instances: Counter[str] = Counter()
    sessions: Counter[str] = Counter()
    for b in blockers:
        version = str(b.details.get("version", ""))
        if version:
            (sessions if b.details.get("source") == "session" else instances)[version] += 1
    if not instances and not sessions:
        return "not proven"
    parts = []
    for version in sorted(set(instances) | set(sessions)):
        counts = [f"{instances[version]} instance(s)"] if instances[version] else []
        if sessions[version]:
            counts.append(f"{sessions[version]} session group(s)")
        parts.append(f"{shop.APP} {version} live: " + " and ".join(counts))
    return "; ".join(parts)


@dataclass(frozen=True)
class GateCall:
    version: str
    during: str
    answer: gate_module.GateAnswer

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "during": self.during,
                "allowed": self.answer.allowed,
                "reasons": [b.message for b in self.answer.blockers]}


@dataclass
class PipelineRecord:
    """What the pipeline did, for the summary."""

    contract_refusals: list[ContractRefusal] = field(default_factory=list)
    gate_calls: list[GateCall] = field(default_factory=list)
    #: The versions deployed, in order (the first one was running at the start).
    releases: list[str] = field(default_factory=list)
    transitions: int = 0
    deploy_steps: int = 0


_PHASE_DONE = re.compile(r"^(\S+): (\S+) done \((.*)\)$")
_BACKFILLED = re.compile(r"^\s*backfilled (\d+) row\(s\) of (\S+)$")


class Pipeline:
    """Walks the example migrations through every phase around two releases of the shop."""

    def __init__(
        self, settings: Settings, fleet: Fleet, router: Router, progress: DemoProgress, *,
        strategy: str, rows: int, hold_seconds: float,
    ) -> None:
        self.settings = settings
        self.fleet = fleet
        self.router = router
        self.progress = progress
        self.strategy = strategy
        self.rows = rows
        self.hold_seconds = hold_seconds
        self.record = PipelineRecord()
        self.migrations: list[Migration] = load_migrations(settings.migrations)
        self.phases: dict[str, Phase] = {m.id: Phase.PENDING for m in self.migrations}
        progress.update(migrations=[m.id for m in self.migrations])

    # -- the story ---------------------------------------------------------------

    def run(self, seed: Callable[[int], None]) -> None:
        first = self.migrations[0]
        self.stage(f"the shop today: {first.id}, {self.rows:,} users with an order each")
        self.advance(first, Phase.CONTRACT)
        seed(self.rows)
        self.deploy(initial_step(self.strategy, shop.OLD))
        self.record.releases.append(shop.OLD)
        self.hold()

        self.stage(f"release {shop.APP} {shop.DUAL_WRITING} (dual-writing)")
        self.advance_ready(Phase.EXPAND, "pre-deploy")
        self.release(shop.OLD, shop.DUAL_WRITING, try_contract=False)
        self.advance_ready(Phase.BACKFILL, "post-deploy")

        current = shop.DUAL_WRITING
        while not all(phase is Phase.CONTRACT for phase in self.phases.values()):
            target = self.next_release()
            if target is None or target <= _version(current):
                raise DemoFailed("no app version can take the remaining migrations further: "
                                 + ", ".join(m for m, p in self.phases.items()
                                             if p is not Phase.CONTRACT))
            new = str(target)
            self.stage(f"release {shop.APP} {new} (new shapes only)")
            self.release(current, new, try_contract=True,
                         pre_deploy=lambda: self.advance_ready(Phase.SWITCH_READ, "pre-deploy"))
            self.stage(f"contract: the old shapes {current} used go")
            self.advance_ready(Phase.CONTRACT, "post-deploy")
            current = new
        self.gate(shop.DUAL_WRITING, "a rollback to it, after contract")
        self.stage(f"done: the shop runs {current} on the new schema")
        self.hold()

    def next_release(self) -> Version | None:
        """The version the next deploy ships: the highest threshold of the started, not
        complete migrations, below the read_new_from of any migration not started yet."""
        started = [m for m in self.migrations
                   if Phase.PENDING < self.phases[m.id] < Phase.CONTRACT]
        waiting = [m for m in self.migrations if self.phases[m.id] is Phase.PENDING]
        ceiling = min((c.read_new_from for m in waiting for c in m.compat.values()
                       if c.read_new_from is not None), default=None)
        wanted = [v for m in started for c in m.compat.values()
                  for v in (c.read_new_from, c.old_unused_from, c.dual_write_from)
                  if v is not None and (ceiling is None or v < ceiling)]
        return max(wanted, default=None)

    def release(
        self, old: str, new: str, *, try_contract: bool,
        pre_deploy: Callable[[], None] | None = None,
    ) -> None:
        answer = self.gate(new, "before the deploy")
        if pre_deploy is not None:
            pre_deploy()
        if not answer.allowed:
            answer = self.gate(new, "after the pre-deploy phases")
            if not answer.allowed:
                raise DemoFailed(f"the gate refused {shop.APP} {new}: "
                                 + "; ".join(b.message for b in answer.blockers))
        self.record.releases.append(new)
        for step in release_steps(self.strategy, old, new):
            self.deploy(step)
            self.hold()
            if try_contract and self.fleet.count(old):
                self.try_contract(None, step.description)
        self.retire(old)

    # -- pipeline actions ----------------------------------------------------------

    def stage(self, text: str) -> None:
        self.progress.update(stage=text)
        self.progress.emit("stage", text)

    def hold(self) -> None:
        time.sleep(self.hold_seconds)

    def deploy(self, step: DeployStep) -> None:
        self.progress.emit("deploy", step.description)
        self.router.route(step.weights)
        self.fleet.scale(step.counts)
        self.router.route(step.weights)
        self.record.deploy_steps += 1
        self.progress.update(running=self.fleet.counts(),
                             shares={v: self.router.share(v) for v in self.fleet.counts()})

    def gate(self, version: str, during: str) -> gate_module.GateAnswer:
        answer = gate_module.run_gate(self.settings, app=shop.APP, version=version)
        self.record.gate_calls.append(GateCall(version, during, answer))
        if answer.allowed:
            self.progress.emit("gate", f"`zdmigrate gate --app {shop.APP} --version {version}` "
                               f"({during}): allowed")
        else:
            first = answer.blockers[0].message
            more = f" (+{len(answer.blockers) - 1} more)" if len(answer.blockers) > 1 else ""
            self.progress.emit("refused", f"`zdmigrate gate --app {shop.APP} --version "
                               f"{version}` ({during}): refused: {first}{more}")
        return answer

    def try_contract(self, migration: Migration | None, during: str) -> None:
        """`phase advance --to contract` for `migration` (default: the first not complete).

        Refused by the fleet check while an app version that uses the old shape is
        live: the refusal is recorded. A migration it lets through is complete.
        """
        if migration is None:
            migration = next(m for m in self.migrations if self.phases[m.id] is not Phase.CONTRACT)
        try:
            self.advance(migration, Phase.CONTRACT)
        except PhaseRefused as exc:
            if any(b.check not in fleet.FLEET_CHECKS for b in exc.blockers):
                raise
            refusal = ContractRefusal(migration.id, during, list(exc.blockers))
            self.record.contract_refusals.append(refusal)
            self.progress.emit(
                "refused",
                f"`zdmigrate phase advance {migration.id} --to contract`: refused, "
                + refusal_reason(exc.blockers),
            )
            return
        for rules in migration.compat.values():
            limit = rules.old_shape_until
            older = [v for v, n in self.fleet.counts().items()
                     if n and limit is not None and _version(v) < limit[1]]
            if older:
                raise DemoFailed(f"contract of {migration.id} went through while {shop.APP} "
                                 f"{', '.join(older)} was live")

    def retire(self, version: str, timeout: float = 30.0) -> None:
        """Tell zdmigrate `version` is gone, once its sessions closed; wait out any heartbeat
        that was not removed (it drops out when its TTL runs out)."""
        if not self.fleet.wait_disconnected(version):
            self.progress.emit("info", f"{shop.APP} {version} still has sessions open")
        removed = engine.fleet_retire(self.settings, app=shop.APP, version=version)
        self.progress.emit("deploy", f"`zdmigrate fleet retire --app {shop.APP} --version "
                           f"{version}`: gone from the fleet ({removed} remembered row(s) removed)")
        deadline = time.monotonic() + timeout
        with db.connect(self.settings, application_name="zdmigrate demo") as conn:
            fleet_settings = fleet.FleetSettings.from_settings(self.settings)
            while True:
                left = [i for i in fleet.live_instances(conn, self.settings.state_schema,
                                                        fleet_settings, remember_sessions=False)
                        if i.app == shop.APP and i.version == version]
                if not left or time.monotonic() > deadline:
                    return
                time.sleep(0.25)

    def advance_ready(self, target: Phase, when: str) -> None:
        """Take every migration up to `target`, in order, as far as they can go now.

        A migration that may not enter contract yet (the fleet still runs a version
        that uses its old shape) stays at switch-read, and the ones after it go up to
        switch-read; one whose operations need an earlier contract waits, and so do
        the ones after it.
        """
        self.progress.emit("info", f"{when}: `zdmigrate phase advance MIGRATION --to {target}` "
                           "for each migration")
        goal = target
        for migration in self.migrations:
            if self.phases[migration.id] >= goal:
                continue
            try:
                if goal is Phase.CONTRACT:
                    self.advance(migration, Phase.SWITCH_READ)
                    self.try_contract(migration, when)
                    if self.phases[migration.id] is not Phase.CONTRACT:
                        goal = Phase.SWITCH_READ
                else:
                    self.advance(migration, goal)
            except OperationInvalid as exc:
                problem = exc.problems[0] if exc.problems else exc.message
                self.progress.emit("info", f"{migration.id} and later wait for earlier "
                                   f"contracts ({problem})")
                return

    def advance(self, migration: Migration, target: Phase) -> None:
        transitions = engine.advance(self.settings, migration.id, to=target, log=self.engine_log)
        for transition in transitions:
            self.phases[migration.id] = transition.to_phase
            self.record.transitions += 1

    def engine_log(self, line: str) -> None:
        done = _PHASE_DONE.match(line)
        if done:
            self.progress.emit("phase", f"{done.group(1)}: {done.group(2)} done ({done.group(3)})")
            return
        filled = _BACKFILLED.match(line)
        if filled:
            self.progress.emit("backfill", f"backfilled {filled.group(1)} row(s) of "
                               f"{filled.group(2)}")


def _version(text: str) -> Version:
    from packaging.version import Version

    return Version(text)
