"""Benchmark: the fixed cost of one `zdmigrate backfill` command, against bare baselines.

On a table of 100 rows (the work itself is nothing) it times, median of --runs:

1. ``psql -c 'select 1'`` (when psql is on the PATH): a process, a connection, a query;
2. ``python -c 'import psycopg; psycopg.connect(url)'``: the same from Python;
3. ``python -c 'import zdmigrate.cli'`` and the imports a backfill command needs;
4. ``zdmigrate backfill MIGRATION --again`` (the whole command: imports, the status
   and checks of the migrations, the backfill's setup, its batch, its final VACUUM
   and verification, exit);
5. the same backfill in-process (`run_backfill` after the imports), split by phase.

Prints each with its median and its excess over the Python baseline (2). Python
writes its bytecode caches to a temporary folder (``PYTHONPYCACHEPREFIX``), warmed
by a first run, as an installed package has them; the last line is the command
without them (``PYTHONDONTWRITEBYTECODE=1`` and an editable install: every module
of zdmigrate compiled at every start). It makes its own database
(``zdm_bench_cli``) on the server of --database-url and drops it.

    python bench/cli_overhead.py --database-url postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[1]
DB = "zdm_bench_cli"
MIGRATION = '''
revision = "0001_email_lower"
down_revision = None

def expand(ctx):
    ctx.execute("ALTER TABLE users ADD COLUMN email_lower text")

def backfill(ctx):
    ctx.backfill("users", set={"email_lower": "lower(email)"},
                 where="email_lower IS DISTINCT FROM lower(email)")
'''
IMPORTS = (
    "import zdmigrate.cli, zdmigrate.backfill.runner, zdmigrate.engine.backfill, "
    "zdmigrate.engine.status, alembic.script.revision"
)
IN_PROCESS = """
import sys, time
began = time.monotonic()
from zdmigrate.backfill import run_backfill
from zdmigrate.config import Settings
from zdmigrate.steps import BackfillStep
imported = time.monotonic()
step = BackfillStep("users", {"email_lower": "lower(email)"},
                    where="email_lower IS DISTINCT FROM lower(email)")
import psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    conn.execute("DELETE FROM zdmigrate.backfills")
cleared = time.monotonic()
result = run_backfill(Settings(database_url=sys.argv[1]), migration_id="0001_email_lower",
                      step=step)
assert result.done
print(imported - began, time.monotonic() - cleared)
"""


def with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def timed(argv: list[str], env: dict[str, str]) -> float:
    began = time.monotonic()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, cwd=ARGS.workdir)
    return time.monotonic() - began


def median(argv: list[str], env: dict[str, str]) -> float:
    timed(argv, env)  # warm: bytecode caches, the server's
    return statistics.median(timed(argv, env) for _ in range(ARGS.runs))


def setup(admin: str, url: str, env: dict[str, str]) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY, email text)")
        conn.execute("INSERT INTO users SELECT g, 'U' || g || '@x' FROM generate_series(1, 100) g")
    migrations = Path(ARGS.workdir) / "migrations"
    migrations.mkdir()
    (migrations / "0001_email_lower.py").write_text(MIGRATION)
    zdm = [sys.executable, "-m", "zdmigrate"]
    subprocess.run([*zdm, "init"], check=True, env=env, cwd=ARGS.workdir, capture_output=True)
    subprocess.run([*zdm, "phase", "advance", "--to", "dual-write"], check=True, env=env,
                   cwd=ARGS.workdir, capture_output=True)


def main() -> None:
    admin = ARGS.database_url
    url = with_db(admin, DB)
    env = {**os.environ, "PYTHONPATH": ARGS.src, "ZDMIGRATE_DATABASE_URL": url,
           "PYTHONPYCACHEPREFIX": str(Path(ARGS.workdir) / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    uncached = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    uncached.pop("PYTHONPYCACHEPREFIX")
    setup(admin, url, env)
    try:
        rows: list[tuple[str, float]] = []
        if shutil.which("psql"):
            rows.append(("psql -c 'select 1'", median(["psql", url, "-c", "select 1"], env)))
        baseline = median([sys.executable, "-c",
                           f"import psycopg; psycopg.connect({url!r}).close()"], env)
        rows.append(("python: import psycopg, connect", baseline))
        rows.append(("python: import zdmigrate.cli", median(
            [sys.executable, "-c", "import zdmigrate.cli"], env)))
        rows.append(("python: the imports of `backfill`", median(
            [sys.executable, "-c", IMPORTS], env)))
        rows.append(("zdmigrate backfill M --again", median(
            [sys.executable, "-m", "zdmigrate", "backfill", "0001_email_lower", "--again"],
            env)))
        rows.append(("  the same, no bytecode caches", median(
            [sys.executable, "-m", "zdmigrate", "backfill", "0001_email_lower", "--again"],
            uncached)))
        splits = []
        for _ in range(ARGS.runs):
            out = subprocess.run([sys.executable, "-c", IN_PROCESS, url], check=True, env=env,
                                 capture_output=True, text=True).stdout.split()
            splits.append((float(out[0]), float(out[1])))
        rows.append(("in-process: import run_backfill", statistics.median(s[0] for s in splits)))
        rows.append(("in-process: run_backfill (100 rows)",
                     statistics.median(s[1] for s in splits)))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB}")
    load = os.getloadavg()
    print(f"median of {ARGS.runs} runs; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
          f"on {os.cpu_count()} cores")
    print(f"{'what':<40}{'seconds':>9}{'over python+connect':>21}")
    for name, seconds in rows:
        print(f"{name:<40}{seconds:>9.3f}{seconds - baseline:>+20.3f}s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "ZDMIGRATE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--src", default=str(ROOT / "src"),
                        help="the zdmigrate sources to time (another checkout's, to compare)")
    ARGS = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        ARGS.workdir = workdir
        main()
