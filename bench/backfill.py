"""Benchmark: one big UPDATE against the zdmigrate backfill of the same change, with app writes.

For each size (100k and 1M rows; 5M with --with-5m) it builds a fresh table and,
while an app thread updates a random row every 5 ms, measures:

1. ``UPDATE bench_items SET new = old * 2`` as one statement;
2. the zdmigrate backfill of the same change at default settings, on a fresh copy
   (in a child process, to measure its peak memory).

Prints per size: rows/s of each and the ratio (backfill / UPDATE), the app's
write p99 and longest wait during each, WAL bytes written, the table size after
over before, the backfill's peak RSS, and the machine's 1-minute load average
(mean of before and after each run: on a shared machine it says how much the
figures are worth). Not run by the tests.

    python bench/backfill.py --database-url postgresql://postgres@127.0.0.1/postgres [--waits]
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
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from zdmigrate.state import Store

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
from zdmigrate.backfill import run_backfill
from zdmigrate.config import Settings
from zdmigrate.steps import BackfillStep
url, workers, extra = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
step = BackfillStep("bench_items", {"new": "old * 2"}, where="new IS NULL")
started_at = time.time()
result = run_backfill(Settings(database_url=url), migration_id="bench", step=step,
                      workers=int(workers) if workers != "auto" else None,
                      max_replication_lag=0, **extra)
print(json.dumps({"elapsed": result.elapsed, "started_at": started_at, "rows": result.rows_updated,
                  "workers": result.workers, "reason": result.workers_reason,
                  "vacuums": result.vacuums, "wal": result.wal,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def build(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_items")
        conn.execute("DROP SCHEMA IF EXISTS zdmigrate CASCADE")
        # no autovacuum on it: both runs alike, whatever the server's setting
        conn.execute(
            "CREATE TABLE bench_items (id bigint PRIMARY KEY, payload text NOT NULL, "
            "old int NOT NULL, new int, app_writes int NOT NULL DEFAULT 0) "
            "WITH (autovacuum_enabled = false)"
        )
        conn.execute(
            "INSERT INTO bench_items (id, payload, old) "
            "SELECT g, md5(g::text), g FROM generate_series(1, %s) g",
            [rows],
        )
        conn.execute("VACUUM ANALYZE bench_items")
        Store(conn, "zdmigrate").ensure_schema()  # once per database, as `zdmigrate init` does
        conn.execute("CHECKPOINT")


def table_size(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_table_size('bench_items')").fetchone()
    return int(row[0]) if row else 0


def wal_lsn(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    return str(row[0]) if row else "0/0"


def wal_bytes(url: str, since: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [since]).fetchone()
    return int(row[0]) if row else 0


class AppWriter:
    """A single-row UPDATE of a random row every 5 ms; records each write's duration.

    With `sample_waits`, a second connection reads the writer's wait event from
    pg_stat_activity every few milliseconds, so `slow_writes` can say what each
    write slower than `SLOW` waited on (a lock, the WAL flush, I/O, or nothing:
    the CPU).
    """

    SLOW = 0.05

    def __init__(self, url: str, rows: int, *, sample_waits: bool = False) -> None:
        self.url = url
        self.rows = rows
        self.stop = threading.Event()
        self.waits: list[float] = []
        self.started = time.time()
        self._spans: list[tuple[float, float]] = []  # (began, took) of slow writes
        self._samples: list[tuple[float, str]] = []  # (when, wait event)
        self._pid: int | None = None
        self.thread = threading.Thread(target=self._run)
        self.sampler = threading.Thread(target=self._sample) if sample_waits else None

    def _run(self) -> None:
        rng = random.Random(1)
        with psycopg.connect(self.url, autocommit=True) as conn:
            self._pid = conn.info.backend_pid
            while not self.stop.is_set():
                began = time.time()
                conn.execute(
                    "UPDATE bench_items SET app_writes = app_writes + 1 WHERE id = %s",
                    [rng.randint(1, self.rows)],
                )
                took = time.time() - began
                self.waits.append(took)
                if took >= self.SLOW:
                    self._spans.append((began, took))
                self.stop.wait(max(0.0, 0.005 - took))

    def _sample(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                if self._pid is not None:
                    row = conn.execute(
                        "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') "
                        "FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
                        [self._pid],
                    ).fetchone()
                    if row:
                        self._samples.append((time.time(), str(row[0])))
                self.stop.wait(0.003)

    def slow_writes(self, origin: float | None = None) -> list[str]:
        """Each slow write: when (seconds after `origin`, a time.time(); default: the
        writer's start), how long, what it waited on."""
        origin = self.started if origin is None else origin
        lines = []
        for began, took in self._spans:
            seen: dict[str, int] = {}
            for at, event in self._samples:
                if began <= at <= began + took:
                    seen[event] = seen.get(event, 0) + 1
            events = ", ".join(f"{e} x{n}" for e, n in sorted(seen.items(), key=lambda i: -i[1]))
            lines.append(f"at {began - origin:6.2f}s took {took:.3f}s: {events or '-'}")
        return lines

    def p99(self) -> float:
        ordered = sorted(self.waits)
        return ordered[int(len(ordered) * 0.99)] if ordered else 0.0

    def __enter__(self) -> AppWriter:
        self.started = time.time()
        self.thread.start()
        if self.sampler is not None:
            self.sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        if self.sampler is not None:
            self.sampler.join()


def child(url: str, workers: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url, workers, json.dumps(dict(ARGS.option))],
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


def measure(rows: int) -> dict[str, Any]:
    url = ARGS.database_url
    build(url, rows)
    before = table_size(url)
    lsn = wal_lsn(url)
    load = os.getloadavg()[0]
    with AppWriter(url, rows, sample_waits=ARGS.waits) as app, \
            psycopg.connect(url, autocommit=True) as conn:
        time.sleep(0.5)
        began, started_at = time.monotonic(), time.time()
        conn.execute("UPDATE bench_items SET new = old * 2")
        single = time.monotonic() - began
    update = {"rate": rows / single, "seconds": single, "p99": app.p99(),
              "max": max(app.waits), "wal": wal_bytes(url, lsn),
              "growth": table_size(url) / before, "load": (load + os.getloadavg()[0]) / 2,
              "slow": app.slow_writes(started_at)}

    build(url, rows)
    before = table_size(url)
    lsn = wal_lsn(url)
    load = os.getloadavg()[0]
    with AppWriter(url, rows, sample_waits=ARGS.waits) as app:
        time.sleep(0.5)
        result = child(url, ARGS.workers)
    backfill = {"rate": result["rows"] / result["elapsed"], "seconds": result["elapsed"],
                "p99": app.p99(), "max": max(app.waits), "wal": wal_bytes(url, lsn),
                "growth": table_size(url) / before, "rss": result["maxrss_kb"] / 1024,
                "workers": result["workers"], "reason": result["reason"],
                "vacuums": result["vacuums"], "checkpoints": result["wal"],
                "slow": app.slow_writes(result["started_at"]),
                "load": (load + os.getloadavg()[0]) / 2}
    with psycopg.connect(url) as conn:
        wrong = conn.execute("SELECT count(*) FROM bench_items WHERE new IS DISTINCT FROM old * 2")
        assert wrong.fetchone() == (0,), "the backfill left rows wrong"
    return {"rows": rows, "update": update, "backfill": backfill}


def main() -> None:
    if ARGS.embedded:
        from zdmigrate.embedded import embedded_postgres

        with embedded_postgres() as url:
            ARGS.database_url = url
            run_sizes()
    else:
        run_sizes()


def run_sizes() -> None:
    sizes = [100_000, 1_000_000] + ([5_000_000] if ARGS.with_5m else [])
    if ARGS.sizes:
        sizes = [int(s) for s in ARGS.sizes.split(",")]
    print(f"machine: {machine()}")
    print(f"backfill workers: {ARGS.workers}, options: {dict(ARGS.option) or 'defaults'}; "
          "app: one random-row UPDATE every 5 ms")
    print()
    print(f"{'rows':>10} {'run':<9}{'rows/s':>10}{'s':>8}{'ratio':>7}{'app p99':>9}"
          f"{'app max':>9}{'WAL MiB':>9}{'size x':>8}{'RSS MiB':>9}{'load':>6}")
    results = []
    for rows in sizes:
        m = measure(rows)
        results.append(m)
        u, b = m["update"], m["backfill"]
        for name, r in (("UPDATE", u), ("backfill", b)):
            ratio = f"{r['rate'] / u['rate']:.2f}x"
            rss = f"{r['rss']:.0f}" if "rss" in r else "-"
            print(f"{rows:>10,} {name:<9}{r['rate']:>10,.0f}{r['seconds']:>8.1f}{ratio:>7}"
                  f"{r['p99'] * 1000:>7.1f}ms{r['max']:>8.3f}s{r['wal'] / 2**20:>9.0f}"
                  f"{r['growth']:>7.2f}x{rss:>9}{r['load']:>6.1f}", flush=True)
        wal = b["checkpoints"]
        print(f"{'':>10} ({b['reason']}; {b['vacuums']} VACUUM rounds; "
              f"{wal.get('checkpoints_requested', 0)} requested + "
              f"{wal.get('checkpoints_timed', 0)} timed checkpoints on the server, WAL "
              f"throttle {wal.get('wal_throttled_seconds', 0):g}s)", flush=True)
        if ARGS.waits:
            for name, r in (("UPDATE", u), ("backfill", b)):
                print(f"{'':>10} app writes over {AppWriter.SLOW * 1000:.0f} ms during the "
                      f"{name} ({len(r['slow'])}), seconds from its start:")
                for line in r["slow"][:40]:
                    print(f"{'':>12}{line}")
    if ARGS.json:
        Path(ARGS.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "ZDMIGRATE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--sizes", help="comma-separated row counts (default 100k,1M)")
    parser.add_argument("--with-5m", action="store_true", help="also 5M rows")
    parser.add_argument("--workers", default="auto", help="backfill workers (default: auto)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--embedded", action="store_true",
                        help="on a PostgreSQL of its own (embedded-postgres), not shared "
                        "with other work on the machine's server")
    parser.add_argument("--waits", action="store_true",
                        help="sample what each app write slower than 50 ms waited on "
                        "(pg_stat_activity, every 3 ms) and list them")
    parser.add_argument("--option", action="append", default=[], type=lambda o: o.split("=", 1),
                        help="a backfill option NAME=VALUE (repeatable), to try non-defaults")
    ARGS = parser.parse_args()
    main()
