"""`zdmigrate backfill`, backfill progress in `status`, and the switch-read verification gate."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from zdmigrate import cli, engine
from zdmigrate.config import Settings

MIGRATION = '''
revision = "0001_email_lower"
down_revision = None

def expand(ctx):
    ctx.execute("ALTER TABLE users ADD COLUMN email_lower text")

def rollback_expand(ctx):
    ctx.execute("ALTER TABLE users DROP COLUMN IF EXISTS email_lower")

def backfill(ctx):
    ctx.backfill("users", set={"email_lower": "lower(email)"},
                 where="email_lower IS DISTINCT FROM lower(email)", batch_size=100)

def contract(ctx):
    ctx.execute("ALTER TABLE users DROP COLUMN email")
'''


def email_project(tmp_path: Path, dsn: str, rows: int) -> Path:
    """A migrations folder holding MIGRATION, and a users table of `rows` rows for it."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_email_lower.py").write_text(MIGRATION)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL)")
        conn.execute(
            "INSERT INTO users SELECT g, 'User' || g || '@Example.COM' "
            "FROM generate_series(1, %s) g", [rows],
        )
    return folder


@pytest.fixture
def project(tmp_path: Path, dsn: str) -> Path:
    return email_project(tmp_path, dsn, 1000)


def base_args(db_url: str, folder: Path) -> list[str]:
    return ["--database-url", db_url, "--migrations", str(folder)]


def test_backfill_command_runs_to_the_end_with_json_progress(
    project: Path, db_url: str, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database_url=db_url, migrations=project)
    engine.advance(settings, to="dual-write")
    code = cli.run(
        ["backfill", *base_args(db_url, project), "--format", "json", "--workers", "2",
         "--max-replication-lag", "0"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    records = [json.loads(line) for line in out.splitlines()]
    events = [r["event"] for r in records[:-1]]
    assert events[0] == "start" and events[-1] == "done"
    summary = records[-1]
    assert summary["migration"] == "0001_email_lower"
    assert summary["backfills"][0]["rows_updated"] == 1000
    assert summary["backfills"][0]["verification"]["mismatches"] == 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute(
            "SELECT count(*) FROM users WHERE email_lower = lower(email)"
        ).fetchone() == (1000,)

    assert cli.run(["status", *base_args(db_url, project), "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)["migrations"][0]
    progress = status["backfill"][0]
    assert (progress["table_name"], progress["status"], progress["rows_done"]) == (
        "users", "done", 1000)
    # status says why it ran that many workers, and the table's size before and after
    assert progress["info"]["workers_reason"] == "2 worker(s): as asked"
    assert progress["info"]["table_bytes_before"] > 0
    assert progress["info"]["table_bytes_after"] > 0
    assert summary["backfills"][0]["workers"] == 2
    # and the server's WAL and checkpoints while it ran (issue 21: WAL throttle)
    assert progress["info"]["wal_bytes"] > 0
    assert progress["info"]["checkpoints_requested"] >= 0
    assert progress["info"]["wal_throttled_seconds"] == 0
    assert cli.run(["status", *base_args(db_url, project)]) == 0
    text = capsys.readouterr().out
    assert "worker(s): as asked" in text and "checkpoint(s) (" in text, text

    # the phase advance finds the backfill done and does not redo it
    engine.advance(settings, to="backfill")
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT sum(batches) FROM zdmigrate.backfill_ranges").fetchone()
    assert row is not None and 0 < row[0] <= 12


def test_backfill_before_dual_write_is_refused(
    project: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.advance(Settings(database_url=db_url, migrations=project), to="expand")
    code = cli.run(["backfill", "0001", *base_args(db_url, project)])
    err = capsys.readouterr().err
    assert code == 1
    assert "0001_email_lower is at expand: its backfill needs dual-write first" in err
    assert "Traceback" not in err


def test_pause_and_resume_switch(
    project: Path, db_url: str, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.advance(Settings(database_url=db_url, migrations=project), to="dual-write")
    assert cli.run(["backfill", "0001", "--pause", *base_args(db_url, project)]) == 0
    assert "0001_email_lower: paused 1 backfill(s)" in capsys.readouterr().out
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT status FROM zdmigrate.backfills").fetchone() == ("paused",)
    assert cli.run(["backfill", "0001", "--resume", *base_args(db_url, project)]) == 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT status FROM zdmigrate.backfills").fetchone() == ("running",)


def test_bad_backfill_option_is_exit_2(
    project: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.advance(Settings(database_url=db_url, migrations=project), to="dual-write")
    code = cli.run(["backfill", *base_args(db_url, project), "--max-replication-lag", "soon"])
    assert code == 2
    assert "--max-replication-lag: 'soon' is not a duration" in capsys.readouterr().err


def test_switch_read_gate_refuses_while_a_row_disagrees(
    project: Path, db_url: str, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database_url=db_url, migrations=project)
    engine.advance(settings, to="backfill")
    with psycopg.connect(dsn, autocommit=True) as conn:
        # an app version that does not dual-write changed these after the backfill
        conn.execute("UPDATE users SET email = 'NEW' || email WHERE id IN (7, 500)")
    code = cli.run(["phase", "advance", "0001", "--to", "switch-read", *base_args(db_url, project)])
    err = capsys.readouterr().err
    assert code == 1
    assert "[backfill-unverified] 2 row(s) of public.users disagree" in err
    assert "(id=7), (id=500)" in err
    with psycopg.connect(dsn) as conn:
        assert conn.execute(
            "SELECT phase FROM zdmigrate.migrations WHERE id = '0001_email_lower'"
        ).fetchone() == ("backfill",)
    assert "zdmigrate backfill 0001_email_lower --again" in err
    # a plain rerun finds the backfill done and still reports the disagreement
    assert cli.run(["backfill", "0001", *base_args(db_url, project)]) == 1
    capsys.readouterr()
    # --again walks the table once more: only the two rows still matching `where` change
    assert cli.run(["backfill", "0001", "--again", "--format", "json",
                    *base_args(db_url, project)]) == 0
    result = [json.loads(line) for line in capsys.readouterr().out.splitlines()
              if line.startswith("{")][-1]
    assert result["event"] == "result"
    assert sum(r["rows_updated"] for r in result["backfills"]) == 2
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE email_lower <> lower(email)"
                            ).fetchone() == (0,)
    assert cli.run(["phase", "advance", "0001", "--to", "switch-read",
                    *base_args(db_url, project)]) == 0
