"""Benchmark: `zdmigrate lint` against squawk-cli on the same inputs, measured side by side.

Workloads (issue 15), each tool run as the CLI a CI job would run (a fresh
process, reading the files, its report to /dev/null), alternately, medians:

- one SQL file of 5,000 statements, half of them flagged, ``--format json``
  against ``squawk --reporter json``: target at most 1.0x;
- 300 Alembic revision files: ``zdmigrate lint DIR`` against
  ``alembic upgrade --sql`` followed by squawk on its output (the pair, as a
  team using squawk on Alembic has to run it): target at most 1.0x;
- 300 files of 5 statements (the older workload);
- one small file: zdmigrate's CPU time, target under 0.15 s.

zdmigrate's bytecode is compiled first, as an install would, so the run does
not measure Python compiling its sources. The load average is printed before
and after: wall times on a shared machine mean little without it.

With ``--callgrind``, zdmigrate's side of each workload is also run once under
``valgrind --tool=callgrind`` and its instruction count printed: a figure the
machine's load does not move, to compare two versions of zdmigrate (run the
benchmark with ``PYTHONPATH=/path/to/other/src`` for the other one, and
``--module`` for both: the console script imports the entry point of the
installed version, ``python -m zdmigrate`` that of the version it runs).

    python bench/lint.py [--repeat 7] [--statements 5000] [--files 300] [--callgrind] [--module]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATES = [
    "ALTER TABLE users ADD COLUMN c{i} text;",
    "CREATE INDEX CONCURRENTLY users_c{i}_idx ON users (c{i});",
    "ALTER TABLE orders ADD CONSTRAINT orders_fk_{i} FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;",
    "UPDATE users SET c{i} = lower(name) WHERE id BETWEEN {i} AND {i} + 1000;",
    "CREATE TABLE t{i} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, "
    "created_at timestamptz NOT NULL DEFAULT now());",
    "ALTER TABLE orders VALIDATE CONSTRAINT orders_fk_{i};",
    "COMMENT ON COLUMN users.c{i} IS 'added by migration {i}';",
    "ALTER TABLE users ALTER COLUMN c{i} SET DEFAULT '';",
    "CREATE INDEX users_bad_{i} ON users (c{i});",  # both tools flag this one
    "ALTER TABLE users ADD COLUMN d{i} integer DEFAULT 0;",
]


#: half flag (both tools report them), half do not
FLAGGED_HALF = [
    "CREATE INDEX users_bad_{i} ON users (c{i});",
    "ALTER TABLE users ADD COLUMN c{i} text;",
    "ALTER TABLE users DROP COLUMN old_{i};",
    "CREATE INDEX CONCURRENTLY users_c{i}_idx ON users (c{i});",
    "ALTER TABLE orders ADD CONSTRAINT orders_fk_{i} FOREIGN KEY (user_id) REFERENCES users (id);",
    "ALTER TABLE orders ADD CONSTRAINT orders_fk_v{i} FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;",
    "ALTER TABLE users ALTER COLUMN c{i} TYPE bigint;",
    "COMMENT ON COLUMN users.c{i} IS 'added by migration {i}';",
    "DROP TABLE legacy_{i};",
    "UPDATE users SET c{i} = lower(name) WHERE id BETWEEN {i} AND {i} + 1000;",
]

REVISION = '''"""revision {n}"""
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = {down}


def upgrade():
    op.add_column("users", sa.Column("c{n}", sa.String(100), nullable=True))
    op.create_index("ix_users_c{n}", "users", ["c{n}"], postgresql_concurrently=True)
    op.alter_column("users", "c{n}", existing_type=sa.String(100), type_=sa.String(200))
    op.execute("UPDATE users SET c{n} = name WHERE id < 1000")
    op.create_index("ix_users_bad_{n}", "users", ["c{n}"])


def downgrade():
    op.drop_index("ix_users_bad_{n}", table_name="users")
'''

ENV_PY = '''from alembic import context

config = context.config
context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
with context.begin_transaction():
    context.run_migrations()
'''


def write_alembic_project(root: Path, count: int) -> Path:
    project = root / "alembic_project"
    (project / "db" / "versions").mkdir(parents=True)
    (project / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/db\nsqlalchemy.url = postgresql://localhost/x\n")
    (project / "db" / "env.py").write_text(ENV_PY)
    (project / "db" / "script.py.mako").write_text("")
    for n in range(count):
        down = "None" if n == 0 else f'"r{n - 1:04d}"'
        (project / "db" / "versions" / f"r{n:04d}_step.py").write_text(
            REVISION.format(n=n, rev=f"r{n:04d}", down=down))
    return project


def flagged_half(count: int) -> str:
    return "\n".join(FLAGGED_HALF[i % len(FLAGGED_HALF)].format(i=i) for i in range(count)) + "\n"


def statements(count: int, start: int = 0) -> str:
    return "\n".join(TEMPLATES[(start + i) % len(TEMPLATES)].format(i=start + i) for i in range(count)) + "\n"


def write_inputs(root: Path, n_statements: int, n_files: int) -> tuple[list[str], list[str]]:
    big = root / "big.sql"
    big.write_text(statements(n_statements))
    many = root / "many"
    many.mkdir()
    for f in range(n_files):
        (many / f"{f:04d}_migration.sql").write_text(statements(5, f * 5))
    return [str(big)], sorted(str(p) for p in many.glob("*.sql"))


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """Wall-clock seconds, CPU seconds (user + system) of the child, and its exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def tool(name: str) -> str:
    here = Path(sys.executable).parent
    found = here / name if (here / name).exists() else shutil.which(name)
    if not found:
        sys.exit(f"{name} not found: pip install -e '.[test]' (squawk-cli is in the test extra)")
    return str(found)


def compile_bytecode() -> None:
    """Write zdmigrate's .pyc files, as `pip install` does (PYTHONDONTWRITEBYTECODE may be set)."""
    import zdmigrate

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(zdmigrate.__file__).parent)],
                   check=True)


def instructions(cmd: list[str], cwd: Path | None = None) -> int | None:
    """Instructions executed by `cmd` under callgrind (None if valgrind is not installed)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    proc = subprocess.run([valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False, cwd=cwd)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    return int(found.group(1)) if found else None


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def compare(label: str, ours_cmd: list[str], theirs: list[list[str]], repeat: int,
            target: float) -> float:
    """Run both sides `repeat` times, alternating; print medians; return the wall ratio."""
    ours: list[tuple[float, float]] = []
    others: list[tuple[float, float]] = []
    codes = set()
    for _ in range(repeat):  # alternate, so load on the machine hits both alike
        wall, cpu, code = timed(ours_cmd)
        ours.append((wall, cpu))
        codes.add(code)
        wall = cpu = 0.0
        for cmd in theirs:
            w, c, _ = timed(cmd)
            wall, cpu = wall + w, cpu + c
        others.append((wall, cpu))
    if codes - {0, 1}:
        sys.exit(f"zdmigrate lint failed on {label} (exit {sorted(codes)})")
    a, b = (statistics.median(t[0] for t in runs) for runs in (ours, others))
    ca, cb = (statistics.median(t[1] for t in runs) for runs in (ours, others))
    print(f"{label:44} {a * 1000:8.0f}ms {b * 1000:8.0f}ms {a / b:6.2f}x   "
          f"{ca * 1000:6.0f}ms {cb * 1000:6.0f}ms {ca / cb:6.2f}x   (target <= {target:.2f}x)")
    return a / b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--callgrind", action="store_true",
                        help="also count zdmigrate's instructions per workload (valgrind)")
    parser.add_argument("--module", action="store_true",
                        help="run zdmigrate as `python -m zdmigrate` (to compare with a version "
                        "given by PYTHONPATH whose entry point differs)")
    args = parser.parse_args()
    squawk, alembic = tool("squawk"), tool("alembic")
    zdmigrate = [sys.executable, "-m", "zdmigrate"] if args.module else [tool("zdmigrate")]
    compile_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _big, many = write_inputs(root, args.statements, args.files)
        half = root / "half_flagged.sql"
        half.write_text(flagged_half(args.statements))
        project = write_alembic_project(root, args.files)
        rendered = root / "rendered.sql"
        render = ["sh", "-c", f"cd {project} && {alembic} upgrade head --sql > {rendered}"]
        subprocess.run(render, check=True, stderr=subprocess.DEVNULL)
        print(f"zdmigrate from {Path(__import__('zdmigrate').__file__).parent}; {load()}")
        print(f"{'workload':44} {'zdmigrate':>10} {'squawk':>10} {'ratio':>7}   "
              f"{'cpu zdm':>8} {'cpu sqk':>8} {'ratio':>7}")
        compare(f"1 file x {args.statements} statements, half flagged, json",
                [*zdmigrate, "lint", str(half), "--format", "json"],
                [[squawk, "--reporter", "json", str(half)]], args.repeat, 1.0)
        compare(f"{args.files} Alembic revisions (squawk: alembic --sql + squawk)",
                [*zdmigrate, "lint", str(project)],
                [render, [squawk, str(rendered)]], args.repeat, 1.0)
        compare(f"{args.files} files x 5 statements", [*zdmigrate, "lint", *many],
                [[squawk, *many]], args.repeat, 1.5)
        small = root / "one.sql"
        small.write_text(statements(5))
        cpus = sorted(timed([*zdmigrate, "lint", str(small)])[1] for _ in range(args.repeat))
        cpu = statistics.median(cpus)
        print(f"one-file lint: {cpu * 1000:.0f} ms CPU (target < 150 ms): "
              f"{'met' if cpu < 0.15 else 'NOT met'}")
        print(f"after: {load()}")
        if args.callgrind:
            print("zdmigrate's instructions (callgrind, one run each):")
            for label, cmd in (
                (f"1 file x {args.statements} statements, json",
                 [*zdmigrate, "lint", str(half), "--format", "json"]),
                (f"{args.files} Alembic revisions", [*zdmigrate, "lint", str(project)]),
                (f"{args.files} files x 5 statements", [*zdmigrate, "lint", *many]),
                ("one small file", [*zdmigrate, "lint", str(small)]),
            ):
                count = instructions(cmd)
                print(f"  {label:44} {'valgrind not found' if count is None else f'{count:,}'}")


if __name__ == "__main__":
    main()
