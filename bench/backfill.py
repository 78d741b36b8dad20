"""Benchmark: one big UPDATE against the zdmigrate backfill of the same change, with app writes.

Builds a table (default 1M rows), then in one run measures, while an app thread
writes single rows all along:

1. ``UPDATE t SET new = old * 2`` as one statement;
2. the zdmigrate backfill of the same change (in a child process, to measure its
   peak memory).

Prints each one's throughput, the ratio (backfill / single UPDATE), the longest
wait an app write saw during each, and the backfill's peak RSS (with the RSS of a
child that only imports zdmigrate, as the baseline). Not run by the tests.

    python bench/backfill.py --database-url postgresql://postgres@127.0.0.1/postgres --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from zdmigrate.state import ensure_schema

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
from zdmigrate.backfill import run_backfill
from zdmigrate.config import Settings
from zdmigrate.steps import BackfillStep
url, workers, only_import = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
if only_import:
    print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
    sys.exit()
step = BackfillStep("bench_items", {"new": "old * 2"}, where="new IS NULL")
result = run_backfill(Settings(database_url=url), migration_id="bench", step=step,
                      workers=workers, max_replication_lag=0, verify=False)
print(json.dumps({"elapsed": result.elapsed, "rows": result.rows_updated,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def build(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_items")
        conn.execute("DROP SCHEMA IF EXISTS zdmigrate CASCADE")
        conn.execute(
            "CREATE TABLE bench_items (id bigint PRIMARY KEY, payload text NOT NULL, "
            "old int NOT NULL, new int, app_writes int NOT NULL DEFAULT 0)"
        )
        conn.execute(
            "INSERT INTO bench_items (id, payload, old) "
            "SELECT g, md5(g::text), g FROM generate_series(1, %s) g",
            [rows],
        )
        conn.execute("VACUUM ANALYZE bench_items")
        ensure_schema(conn, "zdmigrate")  # once per database, as `zdmigrate init` does
        conn.execute("CHECKPOINT")


class AppWriter:
    """Single-row UPDATEs on random rows, as fast as they go; records the slowest."""

    def __init__(self, url: str, rows: int) -> None:
        self.url = url
        self.rows = rows
        self.stop = threading.Event()
        self.longest = 0.0
        self.writes = 0
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        rng = random.Random(1)
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                began = time.monotonic()
                conn.execute(
                    "UPDATE bench_items SET app_writes = app_writes + 1 WHERE id = %s",
                    [rng.randint(1, self.rows)],
                )
                self.longest = max(self.longest, time.monotonic() - began)
                self.writes += 1
                time.sleep(0.002)

    def __enter__(self) -> AppWriter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def child(url: str, workers: int, only_import: bool) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(workers), "1" if only_import else "0"],
        check=True, capture_output=True, text=True, env=env,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    with psycopg.connect(ARGS.database_url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{mem:.0f} GiB RAM, Python {platform.python_version()}, "
            f"PostgreSQL {version[0] if version else '?'}")


def main() -> None:
    rows = ARGS.rows
    url = ARGS.database_url
    print(f"machine: {machine()}")
    print(f"rows: {rows:,}, backfill workers: {ARGS.workers}")

    build(url, rows)
    with AppWriter(url, rows) as app, psycopg.connect(url, autocommit=True) as conn:
        time.sleep(0.5)
        began = time.monotonic()
        conn.execute("UPDATE bench_items SET new = old * 2")
        single = time.monotonic() - began
    single_wait, single_writes = app.longest, app.writes

    build(url, rows)
    with AppWriter(url, rows) as app:
        time.sleep(0.5)
        result = child(url, ARGS.workers, only_import=False)
    backfill_wait, backfill_writes = app.longest, app.writes
    baseline = child(url, ARGS.workers, only_import=True)
    with psycopg.connect(url) as conn:
        wrong = conn.execute("SELECT count(*) FROM bench_items WHERE new IS DISTINCT FROM old * 2")
        assert wrong.fetchone() == (0,), "the backfill left rows wrong"

    single_rate = rows / single
    backfill_rate = result["rows"] / result["elapsed"]
    print()
    print(f"{'':28}{'rows/s':>12}{'seconds':>10}{'longest app wait':>18}{'app writes':>12}")
    print(f"{'single UPDATE':28}{single_rate:>12,.0f}{single:>10.2f}{single_wait:>17.3f}s"
          f"{single_writes:>12,}")
    print(f"{'zdmigrate backfill':28}{backfill_rate:>12,.0f}{result['elapsed']:>10.2f}"
          f"{backfill_wait:>17.3f}s{backfill_writes:>12,}")
    print()
    print(f"throughput ratio (backfill / single UPDATE): {backfill_rate / single_rate:.2f}x")
    print(f"backfill peak RSS: {result['maxrss_kb'] / 1024:.1f} MiB "
          f"(a process that only imports zdmigrate: {baseline['maxrss_kb'] / 1024:.1f} MiB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "ZDMIGRATE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=1)
    ARGS = parser.parse_args()
    main()
