"""Benchmark: `zdmigrate lint` against squawk-cli on the same inputs, measured side by side.

Two workloads, as in the issue: one file of 5,000 statements, and 300 files of
5 statements. Both tools run as the CLI a CI job would run (a fresh process,
reading the files, printing their report to /dev/null), alternately, and the
median of each is compared. zdmigrate's bytecode is compiled first, as an
install would, so the run does not measure Python compiling its sources. Prints the ratio zdmigrate / squawk: the target is
at most 1.5 on both.

    python bench/lint.py [--repeat 7] [--statements 5000] [--files 300]

The SQL is a realistic mix of expand-phase DDL (add columns, concurrent
indexes, NOT VALID constraints, new tables, batched updates) with a few
statements both tools flag, so both produce reports.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--files", type=int, default=300)
    args = parser.parse_args()
    zdmigrate, squawk = tool("zdmigrate"), tool("squawk")
    compile_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        big, many = write_inputs(root, args.statements, args.files)
        workloads = {
            f"1 file x {args.statements} statements": big,
            f"{args.files} files x 5 statements": many,
        }
        print(f"{'workload':32} {'zdmigrate':>10} {'squawk':>10} {'ratio':>7}   "
              f"{'cpu zdm':>8} {'cpu sqk':>8} {'ratio':>7}")
        worst = 0.0
        for label, files in workloads.items():
            ours: list[tuple[float, float]] = []
            theirs: list[tuple[float, float]] = []
            codes = set()
            for _ in range(args.repeat):  # alternate, so load on the machine hits both alike
                wall, cpu, code = timed([zdmigrate, "lint", *files])
                ours.append((wall, cpu))
                codes.add(code)
                wall, cpu, _ = timed([squawk, *files])
                theirs.append((wall, cpu))
            if codes - {0, 1}:
                sys.exit(f"zdmigrate lint failed on {label} (exit {sorted(codes)})")
            a, b = (statistics.median(t[0] for t in runs) for runs in (ours, theirs))
            ca, cb = (statistics.median(t[1] for t in runs) for runs in (ours, theirs))
            worst = max(worst, a / b)
            print(f"{label:32} {a * 1000:8.0f}ms {b * 1000:8.0f}ms {a / b:6.2f}x   "
                  f"{ca * 1000:6.0f}ms {cb * 1000:6.0f}ms {ca / cb:6.2f}x")
        print(f"worst wall-clock ratio {worst:.2f}x (target <= 1.50x): "
              f"{'met' if worst <= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
