"""Benchmark: what application reads wait while an expand meets a lock blocker, in one run.

A table ``t`` is read all along by app clients (one short SELECT after another).
A blocker (a long report, an idle-in-transaction session) holds ACCESS SHARE on
``t`` for `--hold` seconds, `--rounds` times with a short gap. During that, on a
fresh copy of the same table each time:

- ``baseline``: no DDL at all;
- ``plain``: ``ALTER TABLE t ADD COLUMN c int`` with no lock_timeout, as a plain
  Alembic upgrade would run it: every read queues behind the waiting ALTER;
- ``zdmigrate``: the same change as a migration's expand step, default settings
  (first try waits 100 ms for the lock, doubling up to lock_timeout 2 s, retried
  within the retry budget).

Each reader sends a request every `--interval` seconds and counts its latency
from when it was due, so every read that piles up behind a stall counts. Prints,
for each: reads, p50/p99/max read latency. Goal: zdmigrate's p99 at most
0.25 s. Not run by the tests.

    python bench/lock_wait.py --database-url postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from zdmigrate import engine  # noqa: E402
from zdmigrate.config import Settings  # noqa: E402

MIGRATION = '''
revision = "0001_add_c"
down_revision = None

def expand(ctx):
    ctx.execute("ALTER TABLE t ADD COLUMN c int")
'''


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.conninfo_to_dict(admin_url)
    url["dbname"] = name
    dsn = psycopg.conninfo.make_conninfo(**url)  # type: ignore[arg-type]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int)")
        conn.execute("INSERT INTO t SELECT g, g FROM generate_series(1, 10000) g")
    return dsn


def scenario(admin_url: str, kind: str, args: argparse.Namespace) -> list[float]:
    dsn = _database(admin_url, f"zdm_bench_lock_{kind}")
    latencies: list[float] = []
    done = threading.Event()

    def reader() -> None:
        # open loop: a request every `interval` seconds, its latency counted from when it
        # was due, so reads that pile up behind a stall all count (no coordinated omission)
        with psycopg.connect(dsn, autocommit=True) as conn:
            due = time.perf_counter()
            while not done.is_set():
                now = time.perf_counter()
                if now < due:
                    time.sleep(due - now)
                conn.execute("SELECT a FROM t WHERE id = 42").fetchone()
                latencies.append(time.perf_counter() - due)
                due += args.interval

    def blocker() -> None:
        with psycopg.connect(dsn) as conn:
            for _ in range(args.rounds):
                conn.execute("SELECT count(*) FROM t")  # ACCESS SHARE until the commit
                time.sleep(args.hold)
                conn.commit()
                time.sleep(args.gap)

    readers = [threading.Thread(target=reader) for _ in range(args.readers)]
    for thread in readers:
        thread.start()
    time.sleep(0.3)
    blocking = threading.Thread(target=blocker)
    blocking.start()
    time.sleep(0.1)
    if kind == "plain":
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ALTER TABLE t ADD COLUMN c int")
    elif kind == "zdmigrate":
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "0001_add_c.py").write_text(MIGRATION)
            settings = Settings.load(
                {"database_url": dsn, "migrations": folder}, environ={},
                pyproject=Path("/nonexistent/pyproject.toml"),
            )
            engine.advance(settings, "0001_add_c", to="expand")
    blocking.join()
    time.sleep(0.3)
    done.set()
    for thread in readers:
        thread.join()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(f"zdm_bench_lock_{kind}")))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a server to create databases on")
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hold", type=float, default=1.5, help="seconds the blocker holds")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between holds")
    parser.add_argument("--interval", type=float, default=0.01,
                        help="seconds between one reader's requests")
    args = parser.parse_args()
    print(f"{args.readers} readers; a blocker holds ACCESS SHARE {args.hold}s x {args.rounds}")
    print(f"{'scenario':<10} {'reads':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    results = {}
    for kind in ("baseline", "plain", "zdmigrate"):
        values = scenario(args.database_url, kind, args)
        results[kind] = _percentile(values, 0.99)
        print(f"{kind:<10} {len(values):>7} {_percentile(values, 0.5) * 1000:>8.1f} "
              f"{results[kind] * 1000:>8.1f} {max(values, default=0) * 1000:>8.1f}")
    verdict = "met" if results["zdmigrate"] <= 0.25 else "NOT met"
    print(f"goal p99 <= 250 ms for zdmigrate: {verdict}; plain ALTER p99 is "
          f"{results['plain'] / max(results['zdmigrate'], 1e-6):.1f}x zdmigrate's")


if __name__ == "__main__":
    main()
