"""Importing zdmigrate.runtime stays light: only the stdlib, psycopg and light zdmigrate modules.

As click's tests/test_imports.py: import in a fresh interpreter, compare
sys.modules with an allow-list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ALLOWED_TOP_LEVEL = {"zdmigrate", "psycopg", "psycopg_binary", "psycopg_c", "typing_extensions"}
# the runtime reads phases and writes heartbeats through zdmigrate.state (one owner per
# table); its package loads every table module, all of them light
ALLOWED_ZDMIGRATE = {
    "zdmigrate", "zdmigrate.errors", "zdmigrate.phases", "zdmigrate.dsn",
    "zdmigrate.state", "zdmigrate.state.backfills", "zdmigrate.state.instances",
    "zdmigrate.state.migrations", "zdmigrate.state.phase_log", "zdmigrate.state.run_lock",
    "zdmigrate.state.schema", "zdmigrate.state.steps", "zdmigrate.state.store",
}
FORBIDDEN = {"alembic", "click", "pglast", "rich", "sqlalchemy", "psycopg_pool"}


def modules_after(statement: str) -> set[str]:
    code = f"import sys, json\nbefore = set(sys.modules)\n{statement}\n" \
           "print(json.dumps(sorted(set(sys.modules) - before)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    ).stdout
    return set(json.loads(out))


def test_import_runtime_loads_only_allowed_modules():
    loaded = modules_after("import zdmigrate.runtime")
    stdlib = set(sys.stdlib_module_names)
    # psycopg's binary wheel is Cython-built; sysconfig data is the stdlib's
    allowed = stdlib | ALLOWED_TOP_LEVEL | {"cython_runtime"}
    outside = {
        m for m in loaded
        if m.split(".")[0] not in allowed
        and not m.startswith(("_cython_", "_sysconfigdata_"))
    }
    assert outside == set()
    ours = {m for m in loaded if m.split(".")[0] == "zdmigrate"}
    assert {m for m in ours if not m.startswith("zdmigrate.runtime")} <= ALLOWED_ZDMIGRATE
    assert "zdmigrate.runtime" in ours
    assert not {m.split(".")[0] for m in loaded} & FORBIDDEN


def test_sqlalchemy_helpers_import_sqlalchemy_but_nothing_else_heavy():
    loaded = {m.split(".")[0] for m in modules_after("import zdmigrate.runtime.sqla")}
    assert "sqlalchemy" in loaded
    assert not loaded & (FORBIDDEN - {"sqlalchemy"})
