"""The fast paths of `zdmigrate lint` decide nothing: same answers as the plain paths.

- `steps.needs_autocommit` reads pglast's JSON tree (the linter asks
  `statement_needs_autocommit` with the statements it parsed);
- the console entry point (`main`) freezes what it loaded for the GC, which
  `run` (tests, embedding) does not: both must print the same report;
- a rule may skip a whole text it cannot flag (`Rule.could_flag`: identifier-too-long
  looks for a long run of bytes once per text), and the DROP rules run only for the
  object types they cover;
- `zdmigrate lint` is parsed without click (`_cli_lint`) when the command line
  is plain: it must read it exactly as click's `lint` does, hand everything
  else to click, and load no click.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from zdmigrate import _cli_lint
from zdmigrate.cli import cli, run
from zdmigrate.steps import needs_autocommit

REPO = Path(__file__).resolve().parents[1]

AUTOCOMMIT = [
    ("CREATE INDEX CONCURRENTLY i ON t (a)", True),
    ("DROP INDEX CONCURRENTLY i", True),
    ("REINDEX (CONCURRENTLY) INDEX i", True),
    ("REINDEX INDEX CONCURRENTLY i", True),
    ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", True),
    ("VACUUM t", True),
    ("VACUUM FULL t", True),
    ("CREATE DATABASE d", True),
    ("DROP DATABASE d", True),
    ("ALTER SYSTEM SET work_mem = '64MB'", True),
    ("SELECT 1; CREATE INDEX CONCURRENTLY i ON t (a)", True),
    ("CREATE INDEX i ON t (a)", False),
    ("DROP INDEX i", False),
    ("REINDEX INDEX i", False),
    ("REINDEX (VERBOSE) INDEX i", False),
    ("ALTER TABLE p DETACH PARTITION c", False),
    ("ALTER TABLE t ADD COLUMN c int", False),
    ("SELECT 'CREATE INDEX CONCURRENTLY i ON t (a)'", False),
    ("CREATE INDEX CONCURRENTLY ON", False),  # does not parse
]


@pytest.mark.parametrize(("sql", "expected"), AUTOCOMMIT)
def test_needs_autocommit(sql: str, expected: bool) -> None:
    assert needs_autocommit(sql) is expected


def test_a_step_that_must_run_outside_a_transaction_is_linted_as_such(tmp_path: Path) -> None:
    # the linter's own answer (from its parse tree): CONCURRENTLY in a step is not
    # "in a transaction", a plain CREATE INDEX still is flagged
    from zdmigrate.lint import lint_steps
    from zdmigrate.phases import Phase
    from zdmigrate.steps import SQLStep

    steps = [SQLStep("CREATE INDEX CONCURRENTLY i ON t (a)", None, None, False),
             SQLStep("CREATE INDEX j ON t (b)", None, None, False)]
    assert [v.rule for v in lint_steps(steps, Phase.EXPAND)] == ["create-index-not-concurrently"]


def _alembic_project(root: Path) -> Path:
    versions = root / "db" / "versions"
    versions.mkdir(parents=True)
    (root / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/db\n")
    (root / "db" / "env.py").write_text("")
    for n in range(3):
        down = "None" if n == 0 else f'"r{n - 1}"'
        (versions / f"r{n}.py").write_text(
            f'"""revision {n}"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
            f'revision = "r{n}"\ndown_revision = {down}\n\n\n'
            "def upgrade():\n"
            f'    op.add_column("users", sa.Column("c{n}", sa.String(100)))\n'
            f'    op.alter_column("users", "c{n}", existing_type=sa.String(100), '
            "type_=sa.String(200))\n"
            f'    op.create_index("ix_{n}", "users", ["c{n}"])\n'
            f'    op.drop_column("users", "old_{n}")\n'
        )
    return root


def test_the_entry_point_and_run_print_the_same_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = _alembic_project(tmp_path / "project")
    sql = tmp_path / "a.sql"
    sql.write_text("CREATE INDEX i ON t (a);\nALTER TABLE t DROP COLUMN b;\n")
    monkeypatch.chdir(tmp_path)
    for key in ("ZDMIGRATE_DATABASE_URL", "ZDMIGRATE_MIGRATIONS"):
        monkeypatch.delenv(key, raising=False)
    args = ["lint", str(project), str(sql), "--format", "json"]
    frozen_before = gc.get_freeze_count()
    assert run(args) == 1
    in_process = capsys.readouterr().out
    assert gc.get_freeze_count() == frozen_before  # run() leaves the host's GC alone
    assert '"rule": "drop-column"' in in_process and '"rule": "create-index-not-concurrently"' \
        in in_process
    env = {k: v for k, v in os.environ.items()
           if k not in ("ZDMIGRATE_DATABASE_URL", "ZDMIGRATE_MIGRATIONS")}
    proc = subprocess.run([sys.executable, "-m", "zdmigrate", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == in_process


LINT_LINES = [
    ["a.sql"],
    ["a.sql", "b.sql", "-"],
    ["--format", "json", "a.sql"],
    ["--format=sarif", "a.sql", "--phase", "contract", "--strict"],
    ["a.sql", "--pg-version=14", "--since", "0002", "--env"],
    ["--list-rules"],
    ["--explain", "drop-column", "--format", "json"],
    ["--migrations", "db/versions", "--database-url", "postgresql://x/y"],
    ["a.sql", "--format", "json", "--format", "text"],
    ["--phase=", "a.sql"],
    ["a.sql", "--", "--strict", "-b.sql"],
    [],
]
#: for click: help, unknown or misspelt options, a value it refuses or must read itself
CLICK_LINES = [
    ["--help"],
    ["-h"],
    ["--phas", "x", "a.sql"],
    ["--format", "xml", "a.sql"],
    ["--format="],
    ["--phase"],
    ["--phase", "-x"],
    ["--strict=1"],
    ["-weird"],
    ["a.sql", "--state-schema", "s"],
]


@pytest.mark.parametrize("args", LINT_LINES + CLICK_LINES, ids=" ".join)
def test_the_lean_lint_parser_reads_a_command_line_as_click_does(args: list[str]) -> None:
    lean = _cli_lint.parse(["lint", *args])
    assert (lean is None) is (args in CLICK_LINES)
    try:
        with cli.make_context("zdmigrate", ["lint", *args]) as group:
            command = cli.get_command(group, "lint")
            assert command is not None
            with command.make_context("lint", list(args), parent=group) as ctx:
                clicked = dict(ctx.params)
    except (click.exceptions.Exit, click.ClickException):
        clicked = None  # help, or a usage error: click's to print
    if lean is not None:
        assert lean == clicked


def test_the_lean_lint_parser_leaves_other_commands_and_global_options_to_click() -> None:
    assert _cli_lint.parse(["status"]) is None
    assert _cli_lint.parse(["--format", "json", "lint", "a.sql"]) is None
    assert _cli_lint.parse(["--help"]) is None


def test_lint_help_and_usage_errors_are_clicks(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["lint", "--help"]) == 0
    assert "Usage: zdmigrate lint [OPTIONS] [PATHS]..." in capsys.readouterr().out
    assert run(["lint", "--format", "xml", "a.sql"]) == 2
    err = capsys.readouterr().err
    assert "Invalid value for '--format'" in err and "hint: see `zdmigrate lint --help`" in err


def test_linting_sql_from_the_entry_point_loads_no_click(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("CREATE INDEX i ON t (a);\n")
    code = (
        "import sys\n"
        "from zdmigrate._entry import run\n"
        "assert run(['lint', 'a.sql', '--format', 'json']) == 1\n"
        "assert 'click' not in sys.modules, 'click was loaded'\n"
        "assert run(['lint', '--bogus']) == 2\n"  # and click still answers what it must
        "assert 'click' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert '"rule": "create-index-not-concurrently"' in proc.stdout


LONG = "orders_customer_id_created_at_status_total_amount_currency_btree_idx"


@pytest.mark.parametrize("sql", [
    f"CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY {LONG} ON t (a);",
    f'CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY "{LONG} with spaces" ON t (a);',
    f"CREATE TABLE café (a int);\nALTER TABLE café RENAME TO {LONG};",  # not ASCII
    f"-- {LONG}\nCREATE TABLE t (a int);",  # a long run in a comment only: nothing
])
def test_the_per_text_pre_filter_decides_nothing(sql: str) -> None:
    from zdmigrate.lint import lint_sql
    from zdmigrate.lint.rules import get_rule
    from zdmigrate.lint.rules.identifier_too_long import long_identifiers

    expected = sum(1 for piece in sql.split(";") if list(long_identifiers(piece)))
    found = [v for v in lint_sql(sql * 3) if v.rule == "identifier-too-long"]
    assert len(found) == 3 * expected
    assert get_rule("identifier-too-long").could_flag(sql) or not expected


def test_the_long_run_pre_filter_is_the_regex_it_replaced() -> None:
    import random
    import re

    from zdmigrate.lint.rules.identifier_too_long import _has_long_run

    regex = re.compile(rb'[^\s(),;.\'"]{64,}|"[^"]{64,}')
    alphabet = b"ab (),;.'\"\t\n\r\x0b\x0c\x1c\xc3\xa9-"
    rng = random.Random(15)
    for _ in range(5000):
        p = rng.random() * 0.2
        data = bytes(rng.choice(alphabet) if rng.random() < p else ord("a")
                     for _ in range(rng.randint(0, 200)))
        assert _has_long_run(data) is bool(regex.search(data)), data


def test_drop_rules_run_only_for_their_object_types() -> None:
    from zdmigrate.lint import lint_sql

    rules = [v.rule for v in lint_sql(
        "DROP INDEX i; DROP TABLE t; DROP INDEX CONCURRENTLY j; DROP FUNCTION f(); "
        "DROP VIEW v; DROP TYPE e; DROP SEQUENCE s; DROP SCHEMA x")]
    assert sorted(rules) == sorted([
        "drop-index", "drop-index-not-concurrently", "drop-table", "drop-index",
        "drop-function", "drop-view", "drop-type", "drop-sequence", "drop-schema"])
