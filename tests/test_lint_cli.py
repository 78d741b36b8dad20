"""`zdmigrate lint` end to end: inputs, formats, exit codes, config, and the phase gate."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import psycopg
import pytest

from zdmigrate import engine
from zdmigrate.cli import run
from zdmigrate.config import Settings
from zdmigrate.db import server_major

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # no pyproject.toml above tmp_path may leak config in; no env either
    monkeypatch.chdir(tmp_path)
    for key in ("ZDMIGRATE_DATABASE_URL", "ZDMIGRATE_MIGRATIONS"):
        monkeypatch.delenv(key, raising=False)


def lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(["lint", *args])
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body).lstrip())
    return path


def test_migrations_example_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    files = len(list((REPO / "migrations_example").glob("0*.py")))
    assert files >= 2
    code, out, _ = lint(capsys, str(REPO / "migrations_example"), "--strict")
    assert (code, out.strip()) == (0, f"no problems in {files} file(s)")


def test_sql_file_errors_exit_1_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "a.sql", "SELECT 1;\n\nALTER TABLE users DROP COLUMN email;\n")
    code, out, _ = lint(capsys, "a.sql")
    assert code == 1
    assert "a.sql:3: error [drop-column] (expand)" in out
    assert "1 error(s), 0 warning(s) in 1 file(s)" in out


def test_phase_option_for_sql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "a.sql", "ALTER TABLE users DROP COLUMN email;\n")
    assert lint(capsys, "a.sql", "--phase", "contract")[0] == 0
    assert lint(capsys, "a.sql", "--phase", "switch_read")[0] == 1
    code, _, err = lint(capsys, "a.sql", "--phase", "later")
    assert code == 2 and "unknown phase 'later'" in err


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("CREATE INDEX i ON t (a);\n"))
    code, out, _ = lint(capsys, "-", "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert data["errors"] == 1 and data["files_checked"] == 1
    (v,) = data["violations"]
    assert (v["rule"], v["path"], v["line"], v["phase"], v["severity"]) == (
        "create-index-not-concurrently", "<stdin>", 1, "expand", "error"
    )


def test_github_and_sarif_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "m" / "x.sql", "-- hi\nDROP TABLE t;\n")
    code, out, _ = lint(capsys, "m/x.sql", "--format", "github")
    assert code == 1
    assert out.startswith("::error file=m/x.sql,line=2,title=zdmigrate drop-table::DROP TABLE t")
    code, out, _ = lint(capsys, "--format", "sarif", "m/x.sql")
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    (result,) = sarif["runs"][0]["results"]
    assert result["ruleId"] == "drop-table" and result["level"] == "error"
    assert result["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "m/x.sql"}, "region": {"startLine": 2},
    }
    rules = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert rules[result["ruleIndex"]]["id"] == "drop-table"


def test_globs_directories_and_since(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "sql" / "001_old.sql", "DROP TABLE old;\n")
    write(tmp_path / "sql" / "002_new.sql", "DROP TABLE new;\n")
    code, out, _ = lint(capsys, "sql/*.sql", "--format", "json")
    assert code == 1
    assert [v["path"] for v in json.loads(out)["violations"]] == ["sql/001_old.sql", "sql/002_new.sql"]
    _, out, _ = lint(capsys, "sql", "--since", "001_old", "--format", "json")
    assert [v["path"] for v in json.loads(out)["violations"]] == [str(Path("sql/002_new.sql"))]
    assert lint(capsys, "sql", "--since", "nope")[0] == 2
    assert lint(capsys, "nothing/*.sql")[0] == 2


def test_warnings_fail_only_with_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "pyproject.toml", '[tool.zdmigrate.lint]\nenable = ["prefer-bigint"]\n')
    write(tmp_path / "t.sql", "CREATE TABLE t (id integer PRIMARY KEY);\n")
    code, out, _ = lint(capsys, "t.sql")
    assert code == 0 and "warning [prefer-bigint]" in out
    assert lint(capsys, "t.sql", "--strict")[0] == 1


def test_config_severity_disable_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "t.sql", "DROP TABLE t;\nCREATE INDEX i ON u (a);\n")
    write(tmp_path / "pyproject.toml", """
        [tool.zdmigrate.lint]
        disable = ["create-index-not-concurrently"]
        severity = { "drop-table" = "warning" }
    """)
    code, out, _ = lint(capsys, "t.sql", "--format", "json")
    assert code == 0
    assert [(v["rule"], v["severity"]) for v in json.loads(out)["violations"]] == [("drop-table", "warning")]
    write(tmp_path / "pyproject.toml", '[tool.zdmigrate.lint]\ndisable = ["drop-tabel"]\n')
    code, _, err = lint(capsys, "t.sql")
    assert code == 2 and "unknown rule 'drop-tabel'" in err
    write(tmp_path / "pyproject.toml", '[tool.zdmigrate.lint]\npg_versoin = 14\n')
    assert lint(capsys, "t.sql")[0] == 2


def test_pg_version_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "t.sql", "ALTER TABLE t ADD COLUMN a int DEFAULT 0;\n")
    assert lint(capsys, "t.sql", "--pg-version", "11")[0] == 0
    assert lint(capsys, "t.sql", "--pg-version", "10.5")[0] == 1
    assert lint(capsys, "t.sql", "--pg-version", "eleven")[0] == 2


def test_list_rules_and_explain(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = lint(capsys, "--list-rules")
    assert code == 0 and "drop-column" in out and "prefer-bigint" in out
    code, out, _ = lint(capsys, "--explain", "set-not-null-without-check")
    assert code == 0 and "Safe way:" in out and "VALIDATE CONSTRAINT" in out
    code, _, err = lint(capsys, "--explain", "no-such-rule")
    assert code == 2 and "unknown lint rule" in err


def test_missing_path_exits_2_and_bad_python_is_one_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert lint(capsys, "missing.sql")[0] == 2
    write(tmp_path / "m" / "0001_x.py", "revision = 'x'\ndown_revision = None\ndef upgrade(:\n")
    code, out, _ = lint(capsys, "m", "--format", "json")
    (found,) = json.loads(out)["violations"]
    assert code == 1
    assert (Path(found["path"]).name, found["line"], found["rule"]) == ("0001_x.py", 3, "revision-not-linted")


def test_alembic_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "proj" / "alembic.ini", "[alembic]\nscript_location = %(here)s/db\n")
    write(tmp_path / "proj" / "db" / "env.py", "")
    write(tmp_path / "proj" / "db" / "versions" / "a1_users.py", '''
        import sqlalchemy as sa
        from alembic import op

        revision = "a1"
        down_revision = None


        def upgrade():
            op.add_column("users", sa.Column("plan", sa.Text(), nullable=False))
            op.alter_column("users", "name", new_column_name="full_name")
    ''')
    write(tmp_path / "proj" / "db" / "versions" / "a2_orders.py", '''
        from alembic import op

        revision = "a2"
        down_revision = "a1"


        def upgrade():
            op.drop_table("orders")
    ''')
    for target in ("proj", "proj/alembic.ini", "proj/db"):
        code, out, _ = lint(capsys, target, "--format", "json")
        found = [(Path(v["path"]).name, v["line"], v["rule"]) for v in json.loads(out)["violations"]]
        assert code == 1
        assert found == [
            ("a1_users.py", 9, "add-column-not-null-without-default"),
            ("a1_users.py", 10, "rename-column"),
            ("a2_orders.py", 8, "drop-table"),
        ], target
    code, out, _ = lint(capsys, "proj", "--since", "a1", "--format", "json")
    assert [v["rule"] for v in json.loads(out)["violations"]] == ["drop-table"]


def test_linting_an_internal_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from zdmigrate.lint.rules import get_rule

    def boom(*args: object) -> None:
        raise RuntimeError("rule bug")

    monkeypatch.setattr(type(get_rule("drop-table")), "check", boom)
    write(tmp_path / "t.sql", "DROP TABLE t;\n")
    code, _, err = lint(capsys, "t.sql")
    assert code == 2
    assert "internal error in lint rule drop-table" in err and "t.sql:1" in err
    assert "Traceback" not in err


def test_pg_version_defaults_to_the_server(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        major = server_major(conn)
    result = engine.lint(Settings.load({"database_url": db_url}), [str(REPO / "migrations_example")])
    assert result.pg_version == major and result.violations == []


def test_phase_advance_refuses_on_lint_errors(tmp_path: Path, db_url: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, sku text)")
    write(tmp_path / "migs" / "0001_idx.py", '''
        revision = "0001_idx"
        down_revision = None


        def expand(ctx):
            ctx.execute("CREATE INDEX items_sku_idx ON items (sku)")
    ''')
    code = run(["phase", "advance", "--database-url", db_url, "--migrations", "migs",
                "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 1
    blockers = json.loads(out or err)["error"]["blockers"]
    assert [b["check"] for b in blockers] == ["lint"]
    assert blockers[0]["rule"] == "create-index-not-concurrently" and blockers[0]["line"] == 6
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'items_sku_idx'").fetchone() == (0,)
    # the safe version goes through
    (tmp_path / "migs" / "0001_idx.py").write_text(
        (tmp_path / "migs" / "0001_idx.py").read_text().replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY")
    )
    assert run(["phase", "advance", "--database-url", db_url, "--migrations", "migs",
                "--accept-changed"]) == 0
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'items_sku_idx'").fetchone() == (1,)
