"""Benchmark: one phase across many databases, sequential vs parallel; and a rename on 8 shards.

1. ``parallel``: the expand of a column rename (``ops.RenameColumn``; zdmigrate's schema
   already in place, as after any earlier migration) on `--databases` fresh databases (32), as ``zdmigrate phase
   advance --to expand`` runs it (``engine.advance_across``, timed in-process after the
   imports; the CLI's start, the same at any parallelism, is printed apart), once with
   ``--parallel 1`` and once with ``--parallel N`` (8), each on its own fresh set of
   databases, in one run; `--rounds` times, alternating which goes first. Prints each
   wall time and the ratio. Goal: at least 3x faster with 8 at once: the work of one
   database is mostly waiting on the server (round trips, commits), not CPU.
2. ``traffic``: the shop's users.name -> full_name rename (migrations_example) across
   `--shards` databases (8), each under its own shop traffic, old and dual-writing
   versions, then dual-writing and new, then new only before contract, all phases
   run across the shards with ``--parallel``. Prints requests and failed requests
   (goal: 0 failed).

Not run by the tests.

    python bench/many_databases.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _traffic import BASE, NEW, RENAME, RenamedShop, ShopTraffic, server  # noqa: E402

from zdmigrate import engine, state  # noqa: E402
from zdmigrate.config import Settings  # noqa: E402
from zdmigrate.demo.shop import (  # noqa: E402
    APP,
    DUAL_WRITING,
    OLD,
    DualWritingShop,
    OldShop,
    ShopVersion,
    seed,
)
from zdmigrate.demo.traffic import TrafficStats  # noqa: E402
from zdmigrate.phases import Phase  # noqa: E402
from zdmigrate.targets import load_targets  # noqa: E402

RENAME_OPERATION = '''
from zdmigrate import ops

revision = "0001_rename"
down_revision = None
operations = [ops.RenameColumn("users", "name", "full_name")]
'''


VERSIONS: dict[str, type[ShopVersion]] = {
    OLD: OldShop, DUAL_WRITING: DualWritingShop, NEW: RenamedShop}


@contextmanager
def databases(admin_url: str, prefix: str, count: int) -> Iterator[list[str]]:
    """`count` fresh databases (their libpq DSNs), dropped afterwards."""
    names = [f"{prefix}_{i:03}" for i in range(count)]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for name in names:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield [make_conninfo(admin_url, dbname=name) for name in names]
        finally:
            for name in names:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)))


def write_project(folder: Path, dsns: list[str], migrations: dict[str, str],
                  extra: str = "") -> None:
    (folder / "migrations").mkdir(parents=True, exist_ok=True)
    for name, text in migrations.items():
        (folder / "migrations" / f"{name}.py").write_text(text)
    lines = ["[tool.zdmigrate]", 'migrations = "migrations"', 'actor = "bench"', extra, "",
             "[tool.zdmigrate.targets]"]
    lines += [f"db-{i:03} = {json.dumps(dsn)}" for i, dsn in enumerate(dsns)]
    (folder / "pyproject.toml").write_text("\n".join(lines) + "\n")


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZDMIGRATE_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    return subprocess.run([sys.executable, "-m", "zdmigrate", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=1800)


# -- 1. sequential vs parallel ---------------------------------------------------------


def one_phase(admin_url: str, count: int, parallel: int, rows: int, tag: str) -> float:
    """Seconds `phase advance --to expand --parallel N` takes on `count` fresh databases.

    Timed in this process (`engine.advance_across`, what the CLI calls), after the
    imports: the command's own start (about 1-2 s of imports) is the same whatever
    the parallelism, and is printed apart by `startup_seconds`.
    """
    with databases(admin_url, f"zdm_bench_many_{tag}", count) as dsns, \
            tempfile.TemporaryDirectory() as tmp:
        for dsn in dsns:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("CREATE TABLE users (id int PRIMARY KEY, name text)")
                conn.execute("INSERT INTO users SELECT g, 'user ' || g "
                             "FROM generate_series(1, %s) g", [rows])
                conn.execute("VACUUM ANALYZE users")
                # zdmigrate's schema is there, as after any earlier migration: the time
                # measured is the phase's, not the one-off creation of the schema
                state.Store(conn, "zdmigrate").ensure_schema()
        folder = Path(tmp)
        write_project(folder, dsns, {"0001_rename": RENAME_OPERATION.lstrip()})
        settings = Settings.load({}, environ={}, pyproject=folder / "pyproject.toml")
        targets = load_targets(settings)
        started = time.perf_counter()
        run = engine.advance_across(
            settings, targets, engine.AcrossOptions(to=Phase.EXPAND, parallel=parallel))
        seconds = time.perf_counter() - started
        if run.exit_code != 0 or run.at_goal() != count:
            raise SystemExit(f"--parallel {parallel}: {run.at_goal()} of {count} at expand; "
                             + "; ".join(f"{r.target.name}: {r.error}" for r in run.failed))
        return seconds


def startup_seconds() -> float:
    """Wall time of a fresh interpreter importing what `zdmigrate phase advance` imports:
    the CLI's start, the same at any --parallel."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZDMIGRATE_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import zdmigrate.cli, zdmigrate.engine.across"],
                   env=env, check=True)
    return time.perf_counter() - started


def bench_parallel(admin_url: str, args: argparse.Namespace) -> dict[str, Any]:
    times: dict[int, list[float]] = {1: [], args.parallel: []}
    for round_no in range(args.rounds):
        order = [1, args.parallel] if round_no % 2 == 0 else [args.parallel, 1]
        for parallel in order:
            seconds = one_phase(admin_url, args.databases, parallel, args.phase_rows,
                                f"p{parallel}")
            times[parallel].append(seconds)
            print(f"  round {round_no + 1}: --parallel {parallel}: {seconds:.2f}s", flush=True)
    sequential = sorted(times[1])[len(times[1]) // 2]
    parallel = sorted(times[args.parallel])[len(times[args.parallel]) // 2]
    return {"databases": args.databases, "parallel": args.parallel, "rounds": args.rounds,
            "cli_startup_seconds": round(startup_seconds(), 2),
            "sequential_seconds": round(sequential, 2), "parallel_seconds": round(parallel, 2),
            "ratio": round(sequential / parallel, 2),
            "all_seconds": {str(k): [round(x, 2) for x in v] for k, v in times.items()}}


# -- 2. the rename under traffic on every shard ----------------------------------------


def bench_traffic(admin_url: str, args: argparse.Namespace) -> dict[str, Any]:
    migrations = {stem: (ROOT / "migrations_example" / f"{stem}.py").read_text()
                  for stem in (BASE, RENAME)}
    stats = TrafficStats()
    with databases(admin_url, "zdm_bench_shard", args.shards) as dsns, \
            tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        write_project(folder, dsns, migrations, extra="\n[tool.zdmigrate.fleet]\nsession_ttl = 1")
        settings = Settings.load({}, environ={}, pyproject=folder / "pyproject.toml")
        targets = load_targets(settings)
        timings: dict[str, float] = {}

        def across(migration: str, to: Phase | None = None) -> None:
            started = time.perf_counter()
            run = engine.advance_across(
                settings, targets, engine.AcrossOptions(migration, to=to, parallel=args.parallel))
            label = f"{migration} -> {run.goal}"
            timings[label] = round(time.perf_counter() - started, 2)
            if run.exit_code != 0:
                raise SystemExit(f"{label}: " + "; ".join(
                    f"{r.target.name}: {r.error}" for r in run.failed))
            print(f"  {label} on {len(targets)} shard(s): {timings[label]:.2f}s", flush=True)

        across(BASE)
        for dsn in dsns:
            with psycopg.connect(dsn, autocommit=True) as conn:
                seed(conn, args.rows)
                conn.execute("VACUUM ANALYZE users")
        shops = [stack.enter_context(ShopTraffic(
            dsn, stats=stats, rate=args.rate, seeded_rows=args.rows,
            schema=settings.state_schema, versions=VERSIONS)) for dsn in dsns]

        def deploy(counts: dict[str, int]) -> None:
            for shop in shops:
                shop.deploy(counts)
            time.sleep(args.hold)

        deploy({OLD: 1, DUAL_WRITING: 1})
        across(RENAME, Phase.SWITCH_READ)
        deploy({OLD: 0, DUAL_WRITING: 1, NEW: 1})
        deploy({DUAL_WRITING: 0, NEW: 2})
        for shop in shops:
            shop.fleet.wait_disconnected(OLD)
            shop.fleet.wait_disconnected(DUAL_WRITING)
        time.sleep(1.2)  # sessions of the old versions are remembered session_ttl (1 s)
        across(RENAME, Phase.CONTRACT)
        time.sleep(args.hold)
        for shop in shops:
            shop.fleet.stop_all()
        report = engine.status_across(settings, targets)
        rename = next(m for m in report.migrations if m.id == RENAME)
    total = stats.total()
    errors = [(v, m, n) for v in stats.versions() for m, n in stats.snapshot(v).errors]
    return {"shards": args.shards, "rows_per_shard": args.rows, "rate_per_shard": args.rate,
            "requests": total.requests, "failed_requests": total.failed,
            "p99_ms": round(total.p99_ms, 2), "fleet_phase": rename.summary(),
            "phase_seconds": timings, "errors": errors[:10]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url",
                        default=os.environ.get("ZDMIGRATE_TEST_DATABASE_URL"),
                        help="a server to create throw-away databases on "
                        "(default: ZDMIGRATE_TEST_DATABASE_URL, else an embedded PostgreSQL)")
    parser.add_argument("--databases", type=int, default=32, help="databases for part 1")
    parser.add_argument("--parallel", type=int, default=8, help="targets at once")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of part 1 (median)")
    parser.add_argument("--phase-rows", type=int, default=1000, help="users a database, part 1")
    parser.add_argument("--shards", type=int, default=8, help="shards for part 2")
    parser.add_argument("--rows", type=int, default=2000, help="users a shard, part 2")
    parser.add_argument("--rate", type=float, default=20.0, help="requests/s a shard, part 2")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds per deploy step")
    parser.add_argument("--only", choices=("parallel", "traffic"), help="run one part only")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    with server(args.database_url) as (admin_url, _):
        with psycopg.connect(admin_url) as conn:
            results["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        if args.only in (None, "parallel"):
            print(f"1. expand of a rename on {args.databases} databases, "
                  f"--parallel 1 vs --parallel {args.parallel}:", flush=True)
            part = results["parallel"] = bench_parallel(admin_url, args)
            print(f"   sequential {part['sequential_seconds']:.2f}s, parallel "
                  f"{part['parallel_seconds']:.2f}s: {part['ratio']:.2f}x faster "
                  f"(goal >= 3x: {'met' if part['ratio'] >= 3 else 'NOT met'}); the CLI's "
                  f"own start adds {part['cli_startup_seconds']:.2f}s to both", flush=True)
        if args.only in (None, "traffic"):
            print(f"2. the rename under traffic on {args.shards} shards "
                  f"({args.rate:g} req/s each, --parallel {args.parallel}):", flush=True)
            part = results["traffic"] = bench_traffic(admin_url, args)
            print(f"   {part['requests']:,} requests, {part['failed_requests']} failed, "
                  f"p99 {part['p99_ms']:.1f} ms; {part['fleet_phase']} "
                  f"(goal 0 failed: {'met' if part['failed_requests'] == 0 else 'NOT met'})")
            for version, message, count in part["errors"]:
                print(f"   {APP} {version}: {count} x {message}")
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"machine: {results['cpus']} cores, PostgreSQL {results['postgresql']}, "
          f"load average after {results['load_average_after']}")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
