"""`zdmigrate gate`: every answer across the phases of a rename, offline answers, bad input."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.fix_cli import Cli
from tests.fleet_helpers import phase_of, write_migrations
from zdmigrate.phases import Phase
from zdmigrate.state import Store

RENAME = "0002_rename"


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    return write_migrations(tmp_path / "migrations")


def answer(cli: Cli, version: str) -> tuple[int, list[str]]:
    code, data = cli.json("gate", "--app", "shop", "--version", version)
    assert data["allowed"] is (code == 0)
    return code, [r["check"] for r in data["reasons"] if r["check"] != "lint"]


# phase of 0002_rename -> {version: reasons}; new = 2.0, old = 1.9, pre-dual-write = 1.4
EXPECTED = {
    "pending": {"2.0": ["gate-read-new-too-early"], "1.9": [], "1.4": []},
    "expand": {"2.0": ["gate-read-new-too-early"], "1.9": [], "1.4": []},
    "dual-write": {"2.0": ["gate-read-new-too-early"], "1.9": [],
                   "1.4": ["gate-dual-write-needed"]},
    "backfill": {"2.0": ["gate-read-new-too-early"], "1.9": [], "1.4": ["gate-dual-write-needed"]},
    "switch-read": {"2.0": [], "1.9": [], "1.4": ["gate-dual-write-needed"]},
    "contract": {"2.0": [], "2.1": [], "1.9": ["gate-old-shape-dropped"],
                 "1.4": ["gate-old-shape-dropped"]},
}


def test_every_gate_answer_across_the_phases_of_a_rename(cli: Cli, dsn: str) -> None:
    assert cli("phase", "advance", "0001_users", "--to", "contract")[0] == 0
    for phase, answers in EXPECTED.items():
        if phase != "pending":
            if phase == "contract":  # proven: only shop 2.0 runs
                assert cli("fleet", "heartbeat", "--app", "shop", "--version", "2.0")[0] == 0
            code, _, err = cli("phase", "advance", RENAME, "--to", phase)
            assert code == 0, err
        assert phase_of(dsn, RENAME) == phase
        for version, reasons in answers.items():
            assert answer(cli, version) == (1 if reasons else 0, reasons), (phase, version)
    # other apps are not concerned by shop's compat, once the fleet knows them
    assert answer(cli, "0.1")[0] == 1
    assert cli("fleet", "declare", "--app", "admin", "--version", "0.1")[0] == 0
    code, out, _ = cli("gate", "--app", "admin", "--version", "0.1")
    assert code == 0 and "admin 0.1 may go out" in out


def test_an_app_nothing_knows_is_not_proven_unless_it_is_new(
    cli: Cli, tmp_path: Path
) -> None:
    assert cli("fleet", "declare", "--app", "admin", "--version", "1.0")[0] == 0
    code, data = cli.json("gate", "--app", "shp", "--version", "2.0")  # a typo of shop
    assert code == 1 and data["allowed"] is False
    unknown = [r for r in data["reasons"] if r["check"] == "gate-unknown-app"]
    assert len(unknown) == 1
    assert unknown[0]["known_apps"] == ["admin", "shop"]
    code, out, _ = cli("gate", "--app", "shp", "--version", "2.0")
    assert code == 1
    assert "known apps: admin, shop" in out and "--new-app" in out
    # the user says it is new: a flag, or the config
    code, data = cli.json("gate", "--app", "billing", "--version", "1.0", "--new-app")
    assert code == 0, data
    (tmp_path / "pyproject.toml").write_text('[tool.zdmigrate]\nnew_apps = ["billing"]\n')
    assert cli.json("gate", "--app", "billing", "--version", "1.0")[0] == 0
    assert cli.json("gate", "--app", "shp", "--version", "1.0")[0] == 1


def test_text_and_github_output_give_every_reason(cli: Cli) -> None:
    code, out, _ = cli("gate", "--app", "shop", "--version", "2.0")
    assert code == 1
    assert out.startswith("gate: shop 2.0 may NOT go out (1 reason)")
    assert "zdmigrate phase advance 0002_rename --to switch-read" in out
    code, out, _ = cli("gate", "--app", "shop", "--version", "2.0", "--format", "github")
    assert code == 1
    lines = out.strip().splitlines()
    assert lines[0].startswith("::error title=zdmigrate gate%3A gate-read-new-too-early::")
    assert lines[-1] == "zdmigrate gate: shop 2.0 may NOT go out (1 reason)"


def test_format_before_the_command_works_too(cli: Cli) -> None:
    code, out, _ = cli("--format", "json", "gate", "--app", "shop", "--version", "1.9")
    assert code == 0 and '"allowed": true' in out


def test_sync_triggers_lift_the_dual_write_rule(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.fleet_helpers import RENAME_BY_TRIGGER

    monkeypatch.chdir(tmp_path)
    cli = Cli(capsys, db_url, write_migrations(tmp_path / "m", RENAME_BY_TRIGGER))
    assert cli("phase", "advance", "0001_users", "--to", "contract")[0] == 0
    assert cli("phase", "advance", RENAME, "--to", "backfill")[0] == 0
    assert answer(cli, "1.4") == (0, [])


def test_without_a_database_it_lints_and_says_what_it_could_not_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZDMIGRATE_DATABASE_URL", raising=False)
    cli = Cli(capsys, None, write_migrations(tmp_path / "migrations"))
    code, data = cli.json("gate", "--app", "shop", "--version", "2.0")
    assert code == 1
    assert [r["check"] for r in data["reasons"] if r["check"] != "lint"] == ["gate-not-checked"]
    assert any("no database URL given" in n for n in data["not_checked"])
    # an app no migration names needs no phase to be known (when it is new)
    code, data = cli.json("gate", "--app", "admin", "--version", "1.0", "--new-app")
    lint_errors = [r for r in data["reasons"] if r["check"] == "lint"]
    assert code == (1 if lint_errors else 0)
    assert not any("no database URL" in n for n in data["not_checked"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gate", "--app", "shop", "--version", "latest"], "not a PEP 440 version"),
        (["gate", "--app", "shop", "--version", "2.0", "--format", "sarif"],
         "'sarif' is not one of 'text', 'json', 'github'"),
        (["gate", "--version", "2.0"], "Missing option '--app'"),
    ],
)
def test_gate_bad_input_exits_2(cli: Cli, args: list[str], message: str) -> None:
    code, out, err = cli(*args)
    assert code == 2
    assert message in out + err
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("compat", "message"),
    [
        ('{"shop": {"read_new_from": "2.1", "old_unused_from": "2.0"}}',
         "compat['shop']: read_new_from 2.1 is after old_unused_from 2.0"),
        ('{"shop": {"read_new_from": "two"}}', "compat['shop']['read_new_from'] = 'two'"),
        ('{"shop": {"read_new": "2"}}', "compat['shop'] has unknown key 'read_new'"),
    ],
)
def test_bad_compat_declaration_exits_2_naming_file_and_line(
    cli: Cli, dsn: str, compat: str, message: str
) -> None:
    path = cli.migrations / "0002_rename.py"
    text = path.read_text()
    good = next(line for line in text.splitlines() if line.startswith("compat ="))
    path.write_text(text.replace(good, f"compat = {compat}"))
    line = text.splitlines().index(good) + 1
    for args in (["gate", "--app", "shop", "--version", "2.0"], ["phase", "advance"], ["status"]):
        code, _out, err = cli(*args)
        assert code == 2, args
        assert f"0002_rename.py:{line}: {message}" in err
    assert columns_or_none(dsn) is None  # nothing was changed


def columns_or_none(dsn: str) -> object:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT to_regclass('public.users')").fetchone()
    return row[0] if row else None


def test_lint_errors_of_pending_phases_are_reasons_with_file_and_line(
    cli: Cli, dsn: str
) -> None:
    bad = cli.migrations / "0003_drop_in_expand.py"
    bad.write_text(
        'revision = "0003_drop_in_expand"\n'
        'down_revision = "0002_rename"\n'
        "\n"
        "\n"
        "def expand(ctx):\n"
        '    ctx.execute("ALTER TABLE users DROP COLUMN name")\n'
    )
    code, data = cli.json("gate", "--app", "admin", "--version", "1.0", "--new-app")
    assert code == 1
    [reason] = [r for r in data["reasons"] if r["check"] == "lint"]
    assert reason["path"].endswith("0003_drop_in_expand.py") and reason["line"] == 6
    assert reason["phase"] == "expand"
    code, out, _ = cli("gate", "--app", "admin", "--version", "1.0", "--new-app",
                       "--format", "github")
    assert code == 1
    assert any(line.startswith("::error file=") and "0003_drop_in_expand.py,line=6" in line
               for line in out.splitlines())
    # once the phase ran (the phase log says so), it is no longer pending: not linted
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = Store(conn, "zdmigrate")
        store.ensure_schema()
        for mid in ("0001_users", "0002_rename", "0003_drop_in_expand"):
            store.migrations.set_phase(mid, Phase.CONTRACT, "x")
    code, data = cli.json("gate", "--app", "admin", "--version", "1.0", "--new-app")
    assert code == 0 and not [r for r in data["reasons"] if r["check"] == "lint"]
