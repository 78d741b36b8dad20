"""Benchmark: a column rename under live traffic, three ways, in one run on the same data.

Renames ``users.name`` to ``users.full_name`` (the shop of ``migrations_example``)
while app clients read and write all along: first only the old version (1.4,
which uses ``name``), then a rolling deploy replaces them one by one with the new
version (2.0, which uses ``full_name``). Three ways, each on a fresh copy of the
same data, with the same clients, request mix and rate:

- ``baseline``: no migration; the deploy is a redeploy of code that still uses ``name``;
- ``naive``: a plain Alembic revision (``op.alter_column("users", "name",
  new_column_name="full_name")``) run as the pre-deploy step, as most teams would;
- ``zdmigrate``: ``migrations_example/0002_rename_users_name.py``: expand, dual-write
  (trigger), backfill and switch-read before the deploy (the gate must say yes to
  2.0), contract after the last old client is gone.

Prints, for each: requests, failed requests, p50/p99/max latency, and p99 as a
ratio of the baseline's. Targets: zdmigrate 0 failed requests and p99 within
1.5x of the baseline. Not run by the tests.

    python bench/zero_downtime.py                                   # embedded PostgreSQL
    python bench/zero_downtime.py --database-url postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _traffic import BASE, NEW, RENAME, RenamedShop, ShopTraffic, server  # noqa: E402
from alembic.operations import Operations  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402

from zdmigrate import engine  # noqa: E402
from zdmigrate import gate as gate_module  # noqa: E402
from zdmigrate.config import Settings  # noqa: E402
from zdmigrate.demo.database import demo_database  # noqa: E402
from zdmigrate.demo.shop import APP, OLD, OldShop, ShopVersion, seed  # noqa: E402
from zdmigrate.demo.traffic import TrafficStats, VersionTraffic  # noqa: E402

SCENARIOS = ("baseline", "naive", "zdmigrate")


class RedeployedShop(OldShop):
    """2.0 in the baseline: a new deploy of code that still uses ``name``."""

    version = NEW


def naive_upgrade(url: str) -> None:
    """The plain Alembic revision most teams would write, run through Alembic itself."""
    sa_engine = sa.create_engine("postgresql+psycopg://",
                                 creator=lambda: psycopg.connect(url, autocommit=False))
    try:
        with sa_engine.begin() as conn:
            op = Operations(MigrationContext.configure(conn))
            op.alter_column("users", "name", new_column_name="full_name")
    finally:
        sa_engine.dispose()


@dataclass
class Run:
    name: str
    total: VersionTraffic
    versions: list[VersionTraffic]
    #: Seconds each migration step took (pre-deploy, post-deploy).
    steps: dict[str, float] = field(default_factory=dict)

    def as_dict(self, baseline_p99: float) -> dict[str, Any]:
        return {
            "scenario": self.name, "requests": self.total.requests,
            "failed_requests": self.total.failed,
            "p50_ms": round(self.total.p50_ms, 2), "p99_ms": round(self.total.p99_ms, 2),
            "max_ms": round(self.total.max_ms, 2),
            "p99_ratio": round(self.total.p99_ms / baseline_p99, 2) if baseline_p99 else None,
            "versions": [v.as_dict() for v in self.versions],
            "migration_seconds": {k: round(v, 2) for k, v in self.steps.items()},
        }


def run_scenario(name: str, server_url: str, args: argparse.Namespace,
                 stats: TrafficStats, steps: dict[str, float]) -> None:
    """One run of `name`; its requests go into `stats`, its migration times into `steps`."""
    with demo_database(server_url) as database, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "migrations"
        folder.mkdir()
        for stem in (BASE, RENAME):
            shutil.copy(ROOT / "migrations_example" / f"{stem}.py", folder / f"{stem}.py")
        settings = Settings.load({"database_url": database.url, "migrations": str(folder),
                                  "actor": "bench"}, environ={},
                                 pyproject=Path(tmp) / "no-pyproject.toml")
        engine.advance(settings, BASE)
        with psycopg.connect(database.url, autocommit=True) as conn:
            seed(conn, args.rows)
            conn.execute("VACUUM ANALYZE users")
            conn.execute("VACUUM ANALYZE orders")
        versions: dict[str, type[ShopVersion]] = {
            OLD: OldShop, NEW: RedeployedShop if name == "baseline" else RenamedShop}
        traffic = ShopTraffic(database.url, stats=stats, rate=args.rate, seeded_rows=args.rows,
                              schema=settings.state_schema, versions=versions,
                              with_runtime=False)

        def timed(label: str, action: Callable[[], None]) -> None:
            started = time.perf_counter()
            action()
            steps[label] = steps.get(label, 0.0) + time.perf_counter() - started

        with traffic:
            traffic.deploy({OLD: args.clients, NEW: 0})
            time.sleep(args.hold)
            if name == "naive":
                timed("alembic upgrade (rename)", lambda: naive_upgrade(database.url))
            elif name == "zdmigrate":
                timed("phase advance --to switch-read",
                      lambda: engine.advance(settings, RENAME, to="switch-read"))
                answer = gate_module.run_gate(settings, app=APP, version=NEW)
                if not answer.allowed:
                    raise SystemExit(f"the gate refused {APP} {NEW}: {answer.as_dict()}")
            time.sleep(args.hold)
            for i in range(1, args.clients + 1):
                traffic.deploy({OLD: args.clients - i, NEW: i})
                time.sleep(args.hold)
            if name == "zdmigrate":
                def contract() -> None:
                    traffic.fleet.wait_disconnected(OLD)
                    engine.fleet_retire(settings, app=APP, version=OLD)
                    engine.advance(settings, RENAME, to="contract")

                timed("fleet retire + phase advance --to contract", contract)
                phases = {s.id: s.phase.value for s in engine.status(settings)}
                if phases[RENAME] != "contract":
                    raise SystemExit(f"{RENAME} ended at {phases[RENAME]}, not contract")
            time.sleep(args.hold)


def machine(server_url: str) -> dict[str, Any]:
    with psycopg.connect(server_url, autocommit=True) as conn:
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"cpus": os.cpu_count(), "memory": memory, "python": platform.python_version(),
            "postgresql": version, "platform": platform.platform(),
            "load_average_before": [round(x, 2) for x in os.getloadavg()]}


def report(runs: list[Run], info: dict[str, Any], args: argparse.Namespace) -> None:
    baseline = next(r for r in runs if r.name == "baseline").total.p99_ms
    print(f"rename users.name -> full_name under traffic: {args.rows:,} users, "
          f"{args.clients} clients, {args.rate:g} req/s, {args.hold:g}s per deploy step, "
          f"{args.repeat} round(s) pooled")
    print(f"machine: {info['cpus']} cores, {info['memory']}, PostgreSQL {info['postgresql']}, "
          f"Python {info['python']}, load average before {info['load_average_before']}, "
          f"after {info['load_average_after']}")
    print()
    print(f"{'':<11}{'requests':>10}{'failed':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'p99 / baseline':>16}")
    for run in runs:
        t = run.total
        ratio = t.p99_ms / baseline if baseline else float("nan")
        print(f"{run.name:<11}{t.requests:>10,}{t.failed:>9,}{t.p50_ms:>9.2f}{t.p99_ms:>9.2f}"
              f"{t.max_ms:>9.1f}{ratio:>15.2f}x")
    print()
    for run in runs:
        for label, seconds in run.steps.items():
            print(f"{run.name}: {label} took {seconds:.2f}s (mean)")
        for v in run.versions:
            for message, count in v.errors:
                print(f"{run.name}: {APP} {v.version}: {count} x {message}")
    zd = next(r for r in runs if r.name == "zdmigrate").total
    ok = zd.failed == 0 and baseline > 0 and zd.p99_ms <= 1.5 * baseline
    print()
    print("targets (zdmigrate: 0 failed requests, p99 <= 1.5x baseline): "
          + ("met" if ok else "NOT met"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url",
                        help="a server to create throw-away databases on (default: embedded)")
    parser.add_argument("--rows", type=int, default=100_000, help="users (one order each)")
    parser.add_argument("--clients", type=int, default=4, help="app clients (instances)")
    parser.add_argument("--rate", type=float, default=300.0, help="requests/s, all clients")
    parser.add_argument("--hold", type=float, default=5.0, help="seconds per deploy step")
    parser.add_argument("--only", choices=SCENARIOS, action="append",
                        help="run only this scenario (repeatable; baseline always runs)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the scenarios this many times, interleaved, and pool the "
                        "requests of each scenario (evens out a noisy machine)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if s == "baseline" or not args.only or s in args.only]
    with server(args.database_url) as (url, where):
        info = machine(url)
        info["server"] = where
        stats = {name: TrafficStats() for name in chosen}
        steps: dict[str, dict[str, float]] = {name: {} for name in chosen}
        for round_ in range(1, args.repeat + 1):
            for name in chosen:
                print(f"round {round_}/{args.repeat}: {name} ...", file=sys.stderr, flush=True)
                run_scenario(name, url, args, stats[name], steps[name])
        runs = [
            Run(name, stats[name].total(),
                [stats[name].snapshot(v) for v in stats[name].versions()],
                {label: seconds / args.repeat for label, seconds in steps[name].items()})
            for name in chosen
        ]
        info["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        baseline = runs[0].total.p99_ms
        print(json.dumps({"machine": info, "rows": args.rows, "clients": args.clients,
                          "rate": args.rate, "hold": args.hold, "repeat": args.repeat,
                          "runs": [r.as_dict(baseline) for r in runs]}, indent=2))
    else:
        report(runs, info, args)


if __name__ == "__main__":
    main()
