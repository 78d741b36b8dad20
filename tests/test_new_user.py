"""What a new user trips over (issue 17): partial advances, dry-run SQL, messages said once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fix_cli import Cli
from tests.fleet_helpers import phase_of, write_migrations

RENAME = "0002_rename"


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    return write_migrations(tmp_path / "migrations")


def test_an_advance_refused_after_moving_reports_what_moved_then_the_refusal(
    cli: Cli, dsn: str
) -> None:
    assert cli("phase", "advance", "0001_users", "--to", "contract")[0] == 0
    assert cli("phase", "advance", RENAME, "--to", "backfill")[0] == 0
    code, out, err = cli("phase", "advance", RENAME, "--to", "contract")
    assert code == 1
    assert phase_of(dsn, RENAME) == "switch-read"
    assert f"{RENAME}: backfill -> switch-read" in out
    assert "cannot enter contract" in err and "fleet-not-proven" in err
    assert cli("phase", "rollback", RENAME, "--to", "backfill")[0] == 0
    code, data = cli.json("phase", "advance", RENAME, "--to", "contract")
    assert code == 1
    assert [(t["from"], t["to"]) for t in data["transitions"]] == [("backfill", "switch-read")]
    assert data["error"]["type"] == "PhaseRefused"
    assert data["error"]["blockers"][0]["check"] == "fleet-not-proven"


def test_nothing_to_do_is_said_once(cli: Cli) -> None:
    assert cli("phase", "advance", "0001_users", "--to", "contract")[0] == 0
    assert cli("phase", "advance", RENAME, "--to", "backfill")[0] == 0
    code, out, err = cli("phase", "advance", RENAME, "--to", "expand")
    assert code == 0
    assert (out + err).count("nothing to do") == 1
    assert f"{RENAME} is already at backfill" in err


def test_dry_run_indents_every_line_of_a_statement(cli: Cli) -> None:
    path = cli.migrations / "0003_multi.py"
    path.write_text(
        'revision = "0003_multi"\ndown_revision = "0002_rename"\n\n\n'
        "def expand(ctx):\n"
        '    ctx.execute("CREATE TABLE audit (\\nid bigint PRIMARY KEY,\\nnote text\\n)")\n'
    )
    assert cli("phase", "advance", "0001_users", "--to", "contract")[0] == 0
    assert cli("phase", "advance", RENAME, "--to", "contract", "--override-fleet-check",
               "--reason", "test")[0] == 0
    code, out, _ = cli("phase", "advance", "0003_multi", "--dry-run")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "0003_multi: would advance pending -> expand"
    sql_lines = lines[1:next(i for i, line in enumerate(lines) if i and "would" in line)]
    assert any("CREATE TABLE audit" in line for line in sql_lines)
    assert any("note text" in line for line in sql_lines)
    assert sql_lines and all(line.startswith("    ") for line in sql_lines if line.strip())


def test_a_phase_equals_its_name_and_keeps_its_order() -> None:
    from zdmigrate.phases import Phase

    assert Phase.EXPAND == "expand" and Phase.DUAL_WRITE == "dual-write"
    assert Phase.CONTRACT != "expand"
    assert Phase.CONTRACT > Phase.EXPAND and Phase.CONTRACT > "expand"  # not the alphabet
    assert sorted([Phase.CONTRACT, Phase.PENDING, Phase.BACKFILL]) == [
        Phase.PENDING, Phase.BACKFILL, Phase.CONTRACT]
    assert {Phase.EXPAND: 1}["expand"] == 1
    assert f"{Phase.SWITCH_READ}" == str(Phase.SWITCH_READ) == "switch-read"
    with pytest.raises(TypeError):
        assert Phase.EXPAND < 3


def test_an_ambiguous_id_prefix_lists_the_candidates(cli: Cli) -> None:
    code, _, err = cli("plan", "000")
    assert code == 2
    assert "ambiguous" in err and "0001_users, 0002_rename" in err
    assert "unknown migration" not in err


def test_lint_with_a_database_url_that_points_nowhere_lints_offline_with_a_note(
    cli: Cli, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    missing = make_conninfo(**{**conninfo_to_dict(db_url), "dbname": "zdm_no_such_database"})
    monkeypatch.setenv("ZDMIGRATE_DATABASE_URL", missing)
    cli.url = None  # the environment's URL only, as a user's shell would have it
    code, out, err = cli("lint")
    assert code == 0, err
    assert "linting offline" in err and "--pg-version" in err
    assert "error" not in err.lower().split("note:")[0]
