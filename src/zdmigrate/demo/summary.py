"""The demo's result: traffic per version, final phases, backfills, refusals (`as_dict` for
JSON; `zdmigrate.output.demo.summary_text` draws it as text)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zdmigrate.demo.pipeline import PipelineRecord
from zdmigrate.demo.shop import APP, role
from zdmigrate.demo.traffic import VersionTraffic
from zdmigrate.phases import Phase


@dataclass
class DemoSummary:
    strategy: str
    database: str
    server_version: str
    duration_seconds: float
    total: VersionTraffic
    versions: list[VersionTraffic]
    migrations: list[tuple[str, Phase]]
    backfills: list[dict[str, Any]]
    record: PipelineRecord = field(default_factory=PipelineRecord)
    app: str = APP

    def role(self, version: str) -> str:
        """What a version is (old, dual-writing, new), in the words the views use."""
        return role(version)

    @property
    def backfilled_rows(self) -> int:
        return sum(int(b.get("rows_done") or 0) for b in self.backfills)

    @property
    def complete(self) -> bool:
        return all(phase is Phase.CONTRACT for _, phase in self.migrations)

    @property
    def ok(self) -> bool:
        """Zero downtime shown: no failed request, every migration complete, contract refused
        while an old version was live."""
        return (self.total.failed == 0 and self.complete and self.total.requests > 0
                and bool(self.record.contract_refusals))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "strategy": self.strategy,
            "database": self.database,
            "server_version": self.server_version,
            "duration_seconds": round(self.duration_seconds, 1),
            "requests": self.total.requests,
            "failed_requests": self.total.failed,
            "p50_latency_ms": round(self.total.p50_ms, 2),
            "p99_latency_ms": round(self.total.p99_ms, 2),
            "max_latency_ms": round(self.total.max_ms, 2),
            "errors": [{"message": m, "count": n} for m, n in self.total.errors],
            "versions": [{**v.as_dict(), "app": self.app, "role": self.role(v.version)}
                         for v in self.versions],
            "migrations": [{"id": mid, "phase": phase.value} for mid, phase in self.migrations],
            "complete": self.complete,
            "backfilled_rows": self.backfilled_rows,
            "backfills": [
                {"migration": b["migration_id"], "table": b["table_name"], "status": b["status"],
                 "rows": int(b.get("rows_done") or 0)}
                for b in self.backfills
            ],
            "releases": list(self.record.releases),
            "contract_refusals": [r.as_dict() for r in self.record.contract_refusals],
            "gate": [g.as_dict() for g in self.record.gate_calls],
            "deploy_steps": self.record.deploy_steps,
            "phase_transitions": self.record.transitions,
        }
