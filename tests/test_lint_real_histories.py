"""Linting Alembic histories as real projects write them (issue 15), on fixture projects of our own.

tests/lint_fixtures/ holds small Alembic projects written for these tests: an
alembic.ini project (history/) whose revisions import the app, a missing
package and a plugin op, end the transaction with get_bind().commit() and
autocommit_block(), read query results, print, and give existing_type; a
Flask-Migrate layout; a [tool.alembic] pyproject layout. The CLI runs in a
subprocess where a plugin registers ops on Alembic's classes (that must not
leak into other tests) and where stdout purity is the point.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

from zdmigrate import engine
from zdmigrate.cli import run
from zdmigrate.config import Settings
from zdmigrate.lint import lint_sql

FIXTURES = Path(__file__).resolve().parent / "lint_fixtures"
HISTORY = FIXTURES / "history"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    for key in ("ZDMIGRATE_DATABASE_URL", "ZDMIGRATE_MIGRATIONS"):
        monkeypatch.delenv(key, raising=False)


def cli(cwd: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZDMIGRATE_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONPATH", None)
    done = subprocess.run([sys.executable, "-m", "zdmigrate", "lint", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout, done.stderr


def sites(report: str) -> list[tuple[str, int | None, str]]:
    return [(Path(v["path"]).name, v["line"], v["rule"]) for v in json.loads(report)["violations"]]


#: what every revision of history/ gives, whatever the mode (r07 and r08 differ)
COMMON = [
    ("r02_widen.py", 14, "change-column-type"),   # INTEGER -> BIGINT: a real rewrite
    ("r02_widen.py", 15, "change-column-type"),   # old type unknown
    ("r03_indexes.py", 9, "create-index-not-concurrently"),
    ("r04_data.py", 11, "data-dependent-sql"),
    ("r04_data.py", 16, "drop-column"),
    ("r06_app.py", 12, "create-index-not-concurrently"),
]


def test_history_keeps_going_past_what_it_cannot_load(tmp_path: Path) -> None:
    code, out, err = cli(tmp_path, str(HISTORY), "--format", "json")
    assert code == 1
    assert sites(out) == sorted([
        *COMMON,
        ("r07_missing.py", 2, "revision-not-linted"),
        ("r08_plugin.py", 9, "revision-not-linted"),
        ("r09_drop_orders.py", 11, "drop-table"),
    ])
    by_file = {Path(v["path"]).name: v for v in json.loads(out)["violations"]}
    missing = by_file["r07_missing.py"]["message"]
    assert "No module named 'zd_not_installed_anywhere'" in missing
    assert "install the package" in missing and "PYTHONPATH" in missing
    assert "ignore[revision-not-linted]" in missing
    plugin = by_file["r08_plugin.py"]["message"]
    assert "rename_enum_label" in plugin and "--env" in plugin and "preload" in plugin
    assert json.loads(out)["files_checked"] == 9
    # what the revisions print is on stderr, never in the report
    assert "r05 imported" in err and "r05 upgrading" in err and "migrated 0 of None users" in err
    assert "Traceback" not in err


def test_env_mode_runs_env_py_offline_and_reports_plugin_sql_at_the_call_site(tmp_path: Path) -> None:
    code, out, err = cli(tmp_path, str(HISTORY), "--env", "--format", "json")
    assert code == 1
    assert sites(out) == sorted([
        *COMMON,
        ("r07_missing.py", 2, "revision-not-linted"),
        ("r08_plugin.py", 9, "rename-enum-value"),  # rendered inside the plugin, reported here
        ("r09_drop_orders.py", 11, "drop-table"),
    ])
    assert "env.py: configuring offline" in err


def test_preload_registers_plugin_ops_without_env_py(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.zdmigrate.lint]\npreload = ["zd_fixture_plugin"]\n')
    code, out, _ = cli(tmp_path, str(HISTORY), "--format", "json")
    assert code == 1
    assert ("r08_plugin.py", 9, "rename-enum-value") in sites(out)
    (tmp_path / "pyproject.toml").write_text('[tool.zdmigrate.lint]\npreload = ["zd_no_such"]\n')
    code, out, err = cli(tmp_path, str(HISTORY))
    assert code == 2 and "preload: importing 'zd_no_such' raised ModuleNotFoundError" in err
    assert out == ""


def test_a_plugin_finding_is_suppressed_at_the_call_site(tmp_path: Path) -> None:
    project = tmp_path / "history"
    shutil.copytree(HISTORY, project)
    revision = project / "db" / "versions" / "r08_plugin.py"
    revision.write_text(revision.read_text().replace(
        '    op.rename_enum_label("order_status", "shipped", "sent")',
        '    # zdmigrate: ignore[rename-enum-value] no app version writes "shipped" any more\n'
        '    op.rename_enum_label("order_status", "shipped", "sent")'))
    code, out, _ = cli(tmp_path, str(project), "--env", "--format", "json")
    assert code == 1  # the other revisions' findings
    assert [site for site in sites(out) if site[0] == "r08_plugin.py"] == []  # nor unused-suppression


def test_since_imports_only_the_revisions_it_selects(tmp_path: Path) -> None:
    code, out, err = cli(tmp_path, str(HISTORY), "--since", "r07", "--format", "json")
    assert code == 1
    assert sites(out) == [("r08_plugin.py", 9, "revision-not-linted"),
                          ("r09_drop_orders.py", 11, "drop-table")]
    assert "r05 imported" not in err  # r05 was never imported
    assert "zd_not_installed_anywhere" not in out  # nor r07, which cannot be
    code, _, err = cli(tmp_path, str(HISTORY), "--since", "r99")
    assert code == 2 and "--since 'r99' is not a revision" in err


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_stdout_holds_only_the_report(tmp_path: Path, fmt: str) -> None:
    code, out, err = cli(tmp_path, str(HISTORY / "db" / "versions" / "r05_print.py"), "--format", fmt)
    assert code == 0
    json.loads(out)  # nothing a revision printed corrupts it
    assert "r05 imported" in err and "r05 upgrading" in err


@pytest.mark.parametrize("target", ["flask_app/migrations", "flask_app/migrations/alembic.ini"])
def test_flask_migrate_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str) -> None:
    code = run(["lint", str(FIXTURES / target), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 1
    assert sites(out) == [("f1a2_add_tags.py", 16, "add-column-not-null-without-default"),
                          ("f1a2_add_tags.py", 16, "create-index-not-concurrently")]


def test_flask_migrate_env_py_that_needs_the_app_is_one_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code = run(["lint", str(FIXTURES / "flask_app" / "migrations"), "--env", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 1
    assert sites(out) == [("env.py", 3, "revision-not-linted"),
                          ("f1a2_add_tags.py", 16, "add-column-not-null-without-default"),
                          ("f1a2_add_tags.py", 16, "create-index-not-concurrently")]
    env_finding = json.loads(out)["violations"][0]["message"]
    assert "env.py could not run offline: env.py raised RuntimeError" in env_finding
    assert "linted without it" in env_finding


@pytest.mark.parametrize("target", ["toml_project", "toml_project/pyproject.toml",
                                    "toml_project/alembic/versions"])
def test_tool_alembic_in_pyproject_and_a_bare_versions_folder(
    capsys: pytest.CaptureFixture[str], target: str,
) -> None:
    code = run(["lint", str(FIXTURES / target), "--format", "json"])
    assert code == 1
    assert sites(capsys.readouterr().out) == [("t1_rename.py", 9, "rename-table")]


def test_alembic_ini_without_script_location_or_flask_layout_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "alembic.ini").write_text("[alembic]\n")
    assert run(["lint", "proj"]) == 2
    err = capsys.readouterr().err
    assert "no script_location" in err and "Flask-Migrate" in err


def write_revision(path: Path, down: str | None, upgrade: str,
                   imports: str = "from alembic import op") -> Path:
    """An Alembic revision at `path`, as projects write them: `imports`, a blank line,
    the revision (the file name's first part: ``a2_drop.py`` is ``a2``) after `down`, two
    blank lines and ``def upgrade():`` on line ``imports + 6`` with `upgrade` as its body."""
    revision = path.name.split("_")[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'{textwrap.dedent(imports).strip()}\n\nrevision = "{revision}"\n'
        f"down_revision = {'None' if down is None else json.dumps(down)}\n\n\n"
        f"def upgrade():\n{textwrap.indent(textwrap.dedent(upgrade).strip(), '    ')}\n")
    return path


def test_revision_not_linted_can_be_suppressed_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    write_revision(tmp_path / "v" / "a1_vendored.py", None, "op.execute(zd_billing_internal.SQL)",
                   '''
        # zdmigrate: ignore[revision-not-linted] vendored from the billing service, linted there
        import zd_billing_internal
        from alembic import op
    ''')
    write_revision(tmp_path / "v" / "a2_drop.py", "a1", 'op.drop_table("invoices")')
    assert run(["lint", "v", "--format", "json"]) == 1
    assert sites(capsys.readouterr().out) == [("a2_drop.py", 8, "drop-table")]


def test_a_render_failure_is_one_finding_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    write_revision(tmp_path / "v" / "b1_app_context.py", None, '''
        op.create_index("ix_a", "accounts", ["email"])
        raise RuntimeError("Working outside of application context.")
    ''')
    assert run(["lint", "v", "--format", "json"]) == 1
    out = capsys.readouterr().out
    assert sites(out) == [("b1_app_context.py", 8, "create-index-not-concurrently"),
                          ("b1_app_context.py", 9, "revision-not-linted")]
    assert "upgrade() raised RuntimeError: Working outside of application context" in out


def test_commit_ends_the_new_table_exemption() -> None:
    sql = textwrap.dedent("""
        BEGIN;
        CREATE TABLE t (id int PRIMARY KEY, a text, b text);
        COMMIT;
        BEGIN;
        ALTER TABLE t DROP COLUMN a;
        CREATE INDEX t_b_idx ON t (b);
        ALTER TABLE t ALTER COLUMN id TYPE bigint;
        COMMIT;
    """).lstrip()
    assert [(v.line, v.rule) for v in lint_sql(sql)] == [
        (5, "drop-column"), (6, "create-index-not-concurrently"), (7, "change-column-type"),
    ]
    same_transaction = sql.replace("COMMIT;\nBEGIN;\n", "")
    assert lint_sql(same_transaction) == []


def test_index_and_constraint_dropped_with_their_table_are_reported_once() -> None:
    sql = ("CREATE INDEX CONCURRENTLY ix_o ON orders (user_id);\n"
           "ALTER TABLE orders DROP CONSTRAINT fk_orders_user;\n"
           "DROP INDEX ix_o;\n"
           "DROP TABLE orders;\n"
           "ALTER TABLE users DROP CONSTRAINT fk_users_plan;\n")
    assert [(v.line, v.rule) for v in lint_sql(sql)] == [(4, "drop-table"), (5, "drop-constraint")]
    # without the DROP TABLE, each is reported
    kept = sql.replace("DROP TABLE orders;\n", "")
    assert [(v.line, v.rule) for v in lint_sql(kept)] == [
        (2, "drop-constraint"), (3, "drop-index"), (3, "drop-index-not-concurrently"),
        (4, "drop-constraint"),
    ]


def test_live_catalog_types_tell_a_widening_from_a_rewrite(
    tmp_path: Path, db_url: str,
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE members (id int PRIMARY KEY, code varchar(50), n int)")
    write_revision(tmp_path / "v" / "c1_widen.py", None, '''
        op.alter_column("members", "code", type_=sa.String(80))
        op.alter_column("members", "n", type_=sa.BigInteger())
    ''', imports="import sqlalchemy as sa\nfrom alembic import op")
    offline = engine.lint(Settings.load({}), ["v"], pg_version=15)
    assert [(v.line, v.rule) for v in offline.violations] == [
        (9, "change-column-type"), (10, "change-column-type")]
    live = engine.lint(Settings.load({"database_url": db_url}), ["v"])
    assert [(v.line, v.rule) for v in live.violations] == [(10, "change-column-type")]
    assert "from int4" in live.violations[0].message


SQUAWK_SQL = """DROP FUNCTION order_total(bigint);
DROP PROCEDURE archive_orders();
ALTER VIEW active_users RENAME TO live_users;
ALTER SEQUENCE order_no RENAME TO order_number;
ALTER TYPE mood RENAME TO feeling;
ALTER FUNCTION order_total(bigint) RENAME TO order_sum;
ALTER SCHEMA billing RENAME TO invoicing;
ALTER TABLE orders RENAME CONSTRAINT orders_fk TO orders_user_fk;
ALTER INDEX orders_user_idx RENAME TO orders_user_id_idx;
"""


def test_drop_function_and_rename_object_agree_with_squawk(tmp_path: Path) -> None:
    squawk = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    path = tmp_path / "objects.sql"
    path.write_text(SQUAWK_SQL)
    done = subprocess.run([squawk, "--reporter", "json", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    theirs = {(v["line"] + 1, v["rule_name"]) for v in json.loads(done.stdout)
              if v["rule_name"] in ("ban-drop-function", "renaming-object")}
    ours = {(v.line, v.rule) for v in lint_sql(SQUAWK_SQL)}
    mapping = {"ban-drop-function": "drop-function", "renaming-object": "rename-object"}
    # the view is rename-table here; an index rename is harmless to the running app
    expected = {(line, mapping[rule]) for line, rule in theirs if line not in (3, 9)}
    assert expected == {(line, rule) for line, rule in ours
                        if rule in ("drop-function", "rename-object")}
    assert (3, "rename-table") in ours and not any(line == 9 for line, _ in ours)
    assert len(theirs) == 9  # squawk flags every line


def test_data_read_warning_is_suppressed_on_the_read_and_diagnostics_can_be_disabled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    write_revision(tmp_path / "v" / "d1_data.py", None, '''
        conn = op.get_bind()
        # zdmigrate: ignore[data-dependent-sql] reviewed: the UPDATE is the same for any rows
        for row in conn.execute(sa.text("SELECT id FROM plans")):
            op.execute(sa.text("UPDATE plans SET v = 2 WHERE id = :id").bindparams(id=row.id))
        op.execute("UPDATE plans SET v = 2")
    ''', imports="import sqlalchemy as sa\nfrom alembic import op")
    write_revision(tmp_path / "v" / "d2_broken.py", "d1", '''
        op.execute("ALTER TABLE plans DROP COLUMN v")
        sys.exit("run this with the app's own runner")
    ''', imports="import sys\nfrom alembic import op")
    assert run(["lint", "v", "--format", "json"]) == 1
    assert sites(capsys.readouterr().out) == [
        ("d1_data.py", 13, "unbatched-backfill"),
        ("d2_broken.py", 9, "drop-column"),
        ("d2_broken.py", 10, "revision-not-linted"),
    ]
    (tmp_path / "pyproject.toml").write_text(
        '[tool.zdmigrate.lint]\ndisable = ["revision-not-linted", "unbatched-backfill"]\n')
    assert run(["lint", "v", "--format", "json"]) == 1
    assert sites(capsys.readouterr().out) == [("d2_broken.py", 9, "drop-column")]
