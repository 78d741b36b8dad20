"""Cost of an unarmed failpoint, against an empty call and against one database round trip.

Three timings, in rounds that alternate their order:

- empty: a call to a function that does nothing (the floor of any call);
- failpoint: ``failpoint("backfill.batch.before_cursor")`` with nothing armed;
- round trip: ``SELECT 1`` on a local connection (with --database-url), the cheapest
  statement a backfill batch or an engine step makes; a batch passes 4 points.

Prints nanoseconds per call and the ratios: failpoint / empty, and the 4 points of a
batch / one round trip (the share of a batch's cheapest statement the points cost).

    python bench/failpoints.py --database-url postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from zdmigrate import failpoints
from zdmigrate.failpoints import failpoint


def _empty(name: str) -> None:
    return None


def _per_call(fn: Callable[[str], None], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn("backfill.batch.before_cursor")
    return (time.perf_counter() - started) / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("ZDMIGRATE_DATABASE_URL"))
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if failpoints._ARMED:
        parser.error(f"unset {failpoints.ENV}: this measures unarmed points")

    empty: list[float] = []
    point: list[float] = []
    for n in range(args.rounds):
        pair = [(_empty, empty), (failpoint, point)]
        for fn, out in pair if n % 2 == 0 else reversed(pair):
            out.append(_per_call(fn, args.calls))
    e, p = statistics.median(empty), statistics.median(point)
    print(f"empty call          {e * 1e9:8.1f} ns")
    print(f"unarmed failpoint   {p * 1e9:8.1f} ns   ratio to an empty call {p / e:.2f}")

    if args.database_url:
        import psycopg

        with psycopg.connect(args.database_url, autocommit=True) as conn:
            trips: list[float] = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                for _ in range(2000):
                    conn.execute("SELECT 1")
                trips.append((time.perf_counter() - started) / 2000)
        t = statistics.median(trips)
        print(f"SELECT 1 round trip {t * 1e9:8.1f} ns")
        print(f"4 points per batch / one round trip: {4 * p / t:.5f} ({4 * p / t:.3%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
