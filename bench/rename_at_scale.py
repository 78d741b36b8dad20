"""Benchmark: a column rename at scale under two-version traffic, copy vs view, in one run.

For each table size (100k and 1M rows; 5M with ``--5m``) and each way, on a fresh
database with the same data, clients, request mix and rate:

- ``baseline``: no migration; old-version clients, then "new" clients on the same names;
- ``copy``: ``RenameColumn("users", "name", "full_name")`` (trigger, batched backfill,
  index copies, drop);
- ``view``: ``RenameColumn(..., mode="view")`` (a view in the version schema; the
  physical rename at contract).

The story of each run: old-version clients (``name``) run; the migration advances to
switch-read; new-version clients (``full_name``; in view mode with the version
schema on their search_path) start, the old ones stop (two versions overlap);
contract runs. Measured:

- ``migration s``: time spent in ``phase advance`` (expand..switch-read + contract),
  i.e. expand to contract without the deploy in between;
- ``WAL``: ``pg_current_wal_lsn()`` difference from just before expand to just after
  contract, raw and net of the traffic's own WAL (the baseline's WAL rate times the
  window), and from a second run of the same migration without traffic (skip it
  with ``--no-quiet-wal``); use a server of your own (the default, an embedded
  PostgreSQL) since WAL is cluster-wide;
- ``size after``: ``pg_total_relation_size('users')`` after contract;
- failed requests, p99 latency and its ratio to the baseline's.

    python bench/rename_at_scale.py                        # embedded PostgreSQL, 100k and 1M
    python bench/rename_at_scale.py --sizes 100000 --5m    # 100k and 5M
    python bench/rename_at_scale.py --database-url postgresql://postgres@127.0.0.1/postgres

Not run by the tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _traffic import server  # noqa: E402

from zdmigrate import engine  # noqa: E402
from zdmigrate.config import Settings  # noqa: E402
from zdmigrate.ops._version_schema import schema_name  # noqa: E402

MIGRATION = "0001_rename_users_name"
WAYS = ("baseline", "copy", "view")
OPERATION = {
    "copy": 'ops.RenameColumn("users", "name", "full_name")',
    "view": 'ops.RenameColumn("users", "name", "full_name", mode="view")',
}
SETUP = """
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO users (name, email)
    SELECT 'user ' || g, 'user' || g || '@example.com' FROM generate_series(1, %(rows)s) g;
CREATE INDEX users_name_idx ON users (name);
"""


@dataclass
class Clients:
    """Client threads of one app version; each request's latency and failures are kept."""

    url: str
    column: str
    rows: int
    pause: float
    options: str = ""
    latencies: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, n: int) -> None:
        for i in range(n):
            thread = threading.Thread(target=self._loop, args=(i,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def _loop(self, seed: int) -> None:
        rng = random.Random(seed)
        col = sql.Identifier(self.column)
        read = sql.SQL("SELECT id, {}, email FROM users WHERE id = %s").format(col)
        update = sql.SQL("UPDATE users SET {} = %s WHERE id = %s").format(col)
        insert = sql.SQL("INSERT INTO users ({}, email) VALUES (%s, %s) RETURNING id").format(col)
        with psycopg.connect(self.url, autocommit=True, options=self.options) as conn:
            while not self.stop.is_set():
                pick = rng.random()
                started = time.perf_counter()
                try:
                    user = rng.randint(1, self.rows)
                    if pick < 0.6:
                        conn.execute(read, [user]).fetchall()
                    elif pick < 0.9:
                        conn.execute(update, [f"renamed {rng.random():.6f}", user])
                    else:
                        conn.execute(insert, ["new user", f"n{rng.random()}@example.com"]).fetchone()
                except psycopg.Error as exc:
                    self.failed.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
                    if conn.broken:
                        return
                else:
                    self.latencies.append(time.perf_counter() - started)
                time.sleep(self.pause)


@dataclass
class Result:
    way: str
    rows: int
    migration_s: float
    wal_bytes: int
    window_s: float
    size_after: int
    requests: int
    failed: int
    p99_ms: float
    errors: list[str]
    quiet_wal_bytes: int | None = None
    quiet_migration_s: float | None = None


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else 0.0


@contextmanager
def fresh_database(server_url: str, name: str) -> Iterator[str]:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(server_url, dbname=name)
    try:
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


def run(server_url: str, way: str, rows: int, args: argparse.Namespace,
        clients: int | None = None) -> Result:
    """One run; `clients=0` runs the migration alone (the quiet WAL measurement)."""
    n_clients = args.clients if clients is None else clients
    with fresh_database(server_url, f"bench_rename_{way}_{rows}") as url, \
            tempfile.TemporaryDirectory() as tmp:
        settings = None
        if way != "baseline":
            folder = Path(tmp) / "migrations"
            folder.mkdir()
            (folder / f"{MIGRATION}.py").write_text(
                f'from zdmigrate import ops\n\nrevision = "{MIGRATION}"\ndown_revision = None\n'
                f"operations = [{OPERATION[way]}]\n"
                'compat = {"shop": {"read_new_from": "2.0", "old_unused_from": "2.0"}}\n')
            settings = Settings.load({"database_url": url, "migrations": str(folder),
                                      "actor": "bench"}, environ={},
                                     pyproject=Path(tmp) / "no-pyproject.toml")
            engine.init(settings)  # zdmigrate's own schema exists before the measurement
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SETUP.replace("%(rows)s", str(int(rows))))
            conn.execute("VACUUM ANALYZE users")
            conn.execute("CHECKPOINT")  # the worst case: every page touched first writes whole
        new_column = "name" if way == "baseline" else "full_name"
        new_options = f"-csearch_path={schema_name(MIGRATION)},public" if way == "view" else ""
        old = Clients(url, "name", rows, args.pause)
        new = Clients(url, new_column, rows, args.pause, options=new_options)
        spent = 0.0
        with psycopg.connect(url, autocommit=True) as probe:
            old.start(n_clients)
            time.sleep(args.hold)
            lsn0 = probe.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
            t0 = time.perf_counter()
            if settings is not None:
                engine.advance(settings, MIGRATION, to="switch-read",
                               override_reason="benchmark")
            spent += time.perf_counter() - t0
            new.start(n_clients)
            time.sleep(args.hold)  # two versions side by side
            old.finish()
            t1 = time.perf_counter()
            if settings is not None:
                engine.advance(settings, MIGRATION, to="contract", override_reason="benchmark")
            spent += time.perf_counter() - t1
            window = time.perf_counter() - t0
            lsn1 = probe.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
            time.sleep(args.hold)
            new.finish()
            wal = probe.execute("SELECT pg_wal_lsn_diff(%s, %s)::bigint", [lsn1, lsn0]).fetchone()
            size = probe.execute("SELECT pg_total_relation_size('users')").fetchone()
        latencies = old.latencies + new.latencies
        failed = old.failed + new.failed
        return Result(way, rows, spent, int(wal[0]) if wal else 0, window,
                      int(size[0]) if size else 0, len(latencies) + len(failed), len(failed),
                      p99(latencies), sorted(set(failed))[:5])


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="a server of your own (default: embedded)")
    parser.add_argument("--sizes", default="100000,1000000", help="row counts, comma-separated")
    parser.add_argument("--5m", dest="five_m", action="store_true", help="add a 5M-row table")
    parser.add_argument("--clients", type=int, default=2, help="client threads per version")
    parser.add_argument("--pause", type=float, default=0.005, help="seconds between requests")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds of traffic per stage")
    parser.add_argument("--no-quiet-wal", dest="quiet_wal", action="store_false",
                        help="skip the second run of each migration without traffic")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.five_m:
        sizes.append(5_000_000)
    results: list[Result] = []
    with server(args.database_url) as (url, where):
        with psycopg.connect(url) as conn:
            version = conn.info.server_version
        for rows in sizes:
            for way in WAYS:
                print(f"... {rows} rows, {way}", file=sys.stderr, flush=True)
                results.append(run(url, way, rows, args))
                if args.quiet_wal and way != "baseline":
                    print(f"... {rows} rows, {way}, no traffic", file=sys.stderr, flush=True)
                    quiet = run(url, way, rows, args, clients=0)
                    results[-1].quiet_wal_bytes = quiet.wal_bytes
                    results[-1].quiet_migration_s = quiet.migration_s
    print_results(results, where, version, args)
    return 1 if any(r.failed for r in results if r.way == "view") else 0


def print_results(results: list[Result], where: str, version: int,
                  args: argparse.Namespace) -> None:
    baseline = {r.rows: r for r in results if r.way == "baseline"}
    rows_out = []
    for r in results:
        base = baseline[r.rows]
        traffic_rate = base.wal_bytes / base.window_s if base.window_s else 0.0
        net = max(0, int(r.wal_bytes - traffic_rate * r.window_s))
        rows_out.append({
            "rows": r.rows, "way": r.way, "migration_s": round(r.migration_s, 3),
            "wal_raw_bytes": r.wal_bytes, "wal_net_bytes": net if r.way != "baseline" else 0,
            "size_after_bytes": r.size_after, "requests": r.requests, "failed": r.failed,
            "p99_ms": round(r.p99_ms, 2),
            "p99_ratio": round(r.p99_ms / base.p99_ms, 2) if base.p99_ms else None,
            "wal_quiet_bytes": r.quiet_wal_bytes,
            "migration_quiet_s": round(r.quiet_migration_s, 3)
            if r.quiet_migration_s is not None else None,
            "errors": r.errors,
        })
    if args.json:
        print(json.dumps({"server": where, "server_version": version,
                          "python": platform.python_version(), "results": rows_out}, indent=2))
        return
    print(f"PostgreSQL {version // 10000} ({where}); {args.clients} clients per version, "
          f"{args.pause * 1000:g} ms between requests")
    print("| rows | way | expand..contract | WAL (raw) | WAL (net of traffic) | WAL (no traffic) "
          "| size after | requests | failed | p99 | p99 vs baseline |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for o in rows_out:
        quiet = "-" if o["wal_quiet_bytes"] is None else human(o["wal_quiet_bytes"])
        print(f"| {o['rows']:,} | {o['way']} | {o['migration_s']:.2f} s | "
              f"{human(o['wal_raw_bytes'])} | {human(o['wal_net_bytes'])} | {quiet} | "
              f"{human(o['size_after_bytes'])} | {o['requests']} | {o['failed']} | "
              f"{o['p99_ms']:.1f} ms | {o['p99_ratio']}x |")
    for o in rows_out:
        for error in o["errors"]:
            print(f"  {o['rows']} {o['way']}: {error}")


if __name__ == "__main__":
    raise SystemExit(main())
