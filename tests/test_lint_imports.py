"""Linting SQL stays light: no SQLAlchemy, Alembic or psycopg (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("sqlalchemy", "alembic", "psycopg")

SCRIPT = """
import json, sys
{body}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})))
"""


def _loaded_heavy(body: str, cwd: Path) -> list[str]:
    code = SCRIPT.format(body=body, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                         check=True)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_lint_sql_imports_no_heavy_module(tmp_path: Path) -> None:
    body = (
        "from zdmigrate.lint import lint_sql\n"
        "assert [v.rule for v in lint_sql('DROP TABLE t')] == ['drop-table']"
    )
    assert _loaded_heavy(body, tmp_path) == []


def test_cli_lint_of_sql_files_imports_no_heavy_module(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("CREATE INDEX i ON t (a);\n")
    body = (
        "from zdmigrate.cli import run\n"
        "assert run(['lint', 'a.sql', '--format', 'sarif']) == 1\n"
        "assert run(['lint', 'a.sql', '--phase', 'contract', '--format', 'github']) == 1"
    )
    assert _loaded_heavy(body, tmp_path) == []


def test_linting_python_migrations_does_load_alembic(tmp_path: Path) -> None:
    # the check above is meaningful: the same probe sees Alembic when it is used
    repo = Path(__file__).resolve().parents[1]
    body = f"from zdmigrate.cli import run\nassert run(['lint', {str(repo / 'migrations_example')!r}]) == 0"
    assert "alembic" in _loaded_heavy(body, tmp_path)


def test_pglast_stays_fully_usable_after_the_linter_loaded_it_lazily(tmp_path: Path) -> None:
    # the linter defers pglast.ast/enums; code that uses them afterwards must not notice
    body = (
        "import zdmigrate.lint, pglast\n"
        "from zdmigrate.steps import needs_autocommit, split_sql\n"
        "assert needs_autocommit('CREATE INDEX CONCURRENTLY i ON t (a)')\n"
        "assert [s for s, _ in split_sql('SELECT 1; SELECT 2')] == ['SELECT 1', 'SELECT 2']\n"
        "from pglast import ast, enums\n"
        "assert type(pglast.parse_sql('SELECT 1')[0].stmt) is ast.SelectStmt\n"
        "assert enums.LockClauseStrength.LCS_FORUPDATE.name == 'LCS_FORUPDATE'"
    )
    assert _loaded_heavy(body, tmp_path) == []
