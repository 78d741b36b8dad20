"""Overhead of zdmigrate.runtime on a write-heavy SQLAlchemy loop, measured side by side.

Both variants insert the same rows in the same shape (old and new column, as an
app must during dual-write), one short transaction per row, through one engine:

- baseline: the app writes both columns by hand, no runtime running;
- runtime: a started Runtime (heartbeats and LISTEN/poll thread on, default
  intervals) and ``write_values(dw, ...)`` on every write.

Rounds alternate the order (A B, B A, ...) so drift and noise hit both alike.
Prints rows/s for each and the ratio; the target is at most 3% overhead.

    python bench/runtime_overhead.py --database-url postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import psycopg
import sqlalchemy as sa

from zdmigrate.config import redact_url
from zdmigrate.phases import Phase
from zdmigrate.runtime import Runtime
from zdmigrate.runtime.sqla import write_values
from zdmigrate.state import Store

MIGRATION = "bench_rename"
SCHEMA = "zdmigrate_bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("ZDMIGRATE_DATABASE_URL")
                        or os.environ.get("ZDMIGRATE_TEST_DATABASE_URL"))
    parser.add_argument("--rows", type=int, default=1000, help="rows per variant per round")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    if not args.database_url:
        print("give --database-url (or set ZDMIGRATE_DATABASE_URL)", file=sys.stderr)
        return 2
    url = args.database_url
    with psycopg.connect(url, autocommit=True) as conn:
        store = Store(conn, SCHEMA)
        store.ensure_schema()
        with conn.transaction():
            store.migrations.set_phase(MIGRATION, Phase.DUAL_WRITE, "bench")
        conn.execute("DROP TABLE IF EXISTS zdm_bench_users")
        conn.execute("CREATE TABLE zdm_bench_users (id bigserial PRIMARY KEY, name text, "
                     "full_name text, email text)")
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                              pool_size=2)
    users = sa.Table("zdm_bench_users", sa.MetaData(),
                     sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("name", sa.Text),
                     sa.Column("full_name", sa.Text), sa.Column("email", sa.Text))
    print(f"database {redact_url(url)}: {args.rounds} rounds x {args.rows} rows per variant")
    try:
        times: dict[str, list[float]] = {"baseline": [], "runtime": []}
        run_round(engine, users, "baseline", 200)  # warm up both paths
        run_round(engine, users, "runtime", 200)
        for i in range(args.rounds):
            order = ("baseline", "runtime") if i % 2 == 0 else ("runtime", "baseline")
            for variant in order:
                times[variant].append(run_round(engine, users, variant, args.rows))
        report(times, args.rows)
    finally:
        engine.dispose()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS zdm_bench_users")
            conn.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                psycopg.sql.Identifier(SCHEMA)))
    return 0


def run_round(engine: sa.Engine, users: sa.Table, variant: str, rows: int) -> float:
    """Seconds to insert `rows` rows, one transaction each."""
    if variant == "baseline":
        start = time.perf_counter()
        for i in range(rows):
            name = f"user {i}"
            with engine.begin() as conn:
                conn.execute(sa.insert(users).values(
                    {users.c.name: name, users.c.full_name: name, users.c.email: "u@x"}))
        return time.perf_counter() - start
    with Runtime(engine, app="bench", version="1.0", schema=SCHEMA) as rt:
        dw = rt.dual_write(MIGRATION, {"name": "full_name"})
        assert rt.phase(MIGRATION) is Phase.DUAL_WRITE
        start = time.perf_counter()
        for i in range(rows):
            values: dict[Any, Any] = {users.c.name: f"user {i}", users.c.email: "u@x"}
            with engine.begin() as conn:
                conn.execute(sa.insert(users).values(write_values(dw, values)))
        return time.perf_counter() - start


def report(times: dict[str, list[float]], rows: int) -> None:
    base = sum(times["baseline"])
    runtime = sum(times["runtime"])
    n = len(times["baseline"])
    ratios = [b / r for b, r in zip(times["baseline"], times["runtime"], strict=True)]
    print(f"baseline: {rows * n / base:9.0f} rows/s")
    print(f"runtime:  {rows * n / runtime:9.0f} rows/s")
    ratio = base / runtime
    print(f"throughput ratio runtime/baseline: {ratio:.3f} (overhead {100 * (1 - ratio):+.1f}%), "
          f"median of rounds {statistics.median(ratios):.3f}; target: overhead <= 3%")


if __name__ == "__main__":
    sys.exit(main())
