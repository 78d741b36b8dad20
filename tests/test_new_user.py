"""What a new user trips over (issue 17): partial advances, dry-run SQL, messages said once."""

from __future__ import annotations

import time
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
    code, _, err = cli("lint")
    assert code == 0, err
    assert "linting offline" in err and "--pg-version" in err
    assert "error" not in err.lower().split("note:")[0]


@pytest.mark.parametrize(
    ("command", "shown", "not_shown"),
    [
        (["status"], ["--database-url", "[text|json]"], ["--lock-timeout", "--actor", "sarif"]),
        (["plan"], ["--migrations"], ["--database-url", "--retry-budget"]),
        (["gate"], ["--new-app", "[text|json|github]"], ["sarif", "--lock-timeout"]),
        (["lint"], ["[text|json|github|sarif]"], ["--state-schema", "--actor"]),
        (["demo"], ["--database-url"], ["--migrations", "--state-schema"]),
        (["phase", "advance"], ["--lock-timeout", "--actor"], ["github"]),
    ],
)
def test_help_shows_only_the_options_and_formats_a_command_takes(
    command: list[str], shown: list[str], not_shown: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from zdmigrate.cli import run

    assert run([*command, "--help"]) == 0
    text = capsys.readouterr().out
    for option in shown:
        assert option in text, (command, option)
    for option in not_shown:
        assert option not in text, (command, option)


def test_a_format_or_option_a_command_does_not_take_is_refused_in_one_error_style(
    cli: Cli,
) -> None:
    code, _, err = cli("status", "--format", "sarif")
    assert code == 2
    assert err.startswith("error: Invalid value for '--format': 'sarif' is not one of 'text'")
    assert "hint: see `zdmigrate status --help`" in err
    from zdmigrate.cli import run

    cli.capsys.readouterr()
    assert run(["--lock-timeout", "2s", "plan"]) == 2
    err = cli.capsys.readouterr().err
    assert err.startswith("error: --lock-timeout does not apply to `zdmigrate plan`")
    assert run(["--format", "sarif", "status"]) == 2
    err = cli.capsys.readouterr().err
    assert err.startswith("error: --format sarif does not apply to `zdmigrate status`; it takes "
                          "text, json")


def test_plan_shows_file_and_line_for_operations_migrations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from zdmigrate.cli import run

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "0001_ops.py").write_text(
        'from zdmigrate import ops\n\nrevision = "0001_ops"\ndown_revision = None\n\n'
        "operations = [\n"
        '    ops.AddColumn("things", "title", "text"),\n'
        '    ops.AddColumn("things", "note", "text"),\n'
        "]\n"
    )
    assert run(["plan", "--migrations", str(folder)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    title = next(line for line in out.splitlines() if "ADD COLUMN \"title\"" in line)
    note = next(line for line in out.splitlines() if "ADD COLUMN \"note\"" in line)
    assert title.endswith("-- 0001_ops.py:7") and note.endswith("-- 0001_ops.py:8")


def test_shell_completion_offers_migration_ids_phases_and_rule_names(migrations_dir: Path) -> None:
    from click.shell_completion import BashComplete

    from zdmigrate.cli import cli as group

    def complete(args: list[str], incomplete: str) -> list[str]:
        shell = BashComplete(group, {}, "zdmigrate", "_ZDMIGRATE_COMPLETE")
        return [item.value for item in shell.get_completions(args, incomplete)]

    folder = ["--migrations", str(migrations_dir)]
    assert complete(["phase", "advance", *folder], "000") == ["0001_users", "0002_rename"]
    assert complete(["plan", *folder], "0002") == ["0002_rename"]
    assert complete(["phase", "rollback", "--to"], "") == [
        "pending", "expand", "dual-write", "backfill", "switch-read", "contract"]
    assert "drop-column" in complete(["lint", "--explain"], "drop-")


def test_the_demos_refusal_counts_instances_as_its_table_does() -> None:
    from zdmigrate.demo.pipeline import refusal_reason
    from zdmigrate.errors import Blocker

    def blocker(version: str, source: str) -> Blocker:
        return Blocker("fleet-old-version", "...", {"version": version, "source": source})

    # 4 instances send heartbeats (the table's count); their connections form 1 session group
    blockers = [blocker("1.4", "heartbeat") for _ in range(4)] + [blocker("1.4", "session")]
    assert refusal_reason(blockers) == "shop 1.4 live: 4 instance(s) and 1 session group(s)"
    assert refusal_reason([]) == "not proven"


def test_status_fits_80_columns_groups_instances_and_keeps_commands_whole(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    long_id = "0003_orders_total_numeric_with_a_long_name"
    (cli.migrations / f"{long_id}.py").write_text(
        f'revision = "{long_id}"\ndown_revision = "0002_rename"\n\n\n'
        "def expand(ctx):\n    ctx.execute(\"CREATE TABLE audit (id bigint PRIMARY KEY)\")\n"
    )
    assert cli("phase", "advance", "0001_users", "--to", "contract")[0] == 0
    assert cli("phase", "advance", RENAME, "--to", "switch-read")[0] == 0
    for n in range(3):
        assert cli("fleet", "heartbeat", "--app", "shop", "--version", "1.4",
                   "--instance", f"web-{n}")[0] == 0
    assert cli("fleet", "declare", "--app", "shop", "--version", "1.4", "--instances", "3")[0] == 0
    code, out, _ = cli("status")
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80, out
    assert any(long_id in line for line in lines)  # never cut
    assert any("switch-read" in line for line in lines)
    # 6 instances of one version: two lines (one per source), not six paragraphs
    assert out.count("[fleet-old-version]") == 2
    assert "3 live instances (heartbeat: web-0, web-1, web-2)" in " ".join(out.split())
    # the command to copy stands alone on its line
    assert "      zdmigrate fleet retire --app shop --version 1.4" in lines
    code, wide, _ = cli("status", "--wide")
    assert code == 0 and wide.count("[fleet-old-version]") == 6


def test_status_tells_a_live_backfill_from_an_interrupted_one(cli: Cli, dsn: str) -> None:
    import psycopg

    from zdmigrate.state import Store

    assert cli("phase", "advance", "0001_users", "--to", "contract")[0] == 0
    assert cli("phase", "advance", RENAME, "--to", "dual-write")[0] == 0
    worker = psycopg.connect(dsn, autocommit=True)  # plays a backfill worker's session
    with worker:
        rows = Store(worker, "zdmigrate").backfills
        rows.open(RENAME, "s0", table_name="users", schema_name="public", cursor={},
                  rows_total=None, batch_size=100)
        rows.add_range(RENAME, "s0", lower=None, upper=None, owner="worker-1")
        code, data = cli.json("status")
        [progress] = data["migrations"][1]["backfill"]
        assert (progress["status"], progress["live_workers"]) == ("running", 1)
        pid = worker.info.backend_pid
    with psycopg.connect(dsn, autocommit=True) as conn:  # a backend ends just after its client
        for _ in range(200):
            if conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                            [pid]).fetchone() == (0,):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the worker's backend did not end")
    # the worker's process is gone (killed -9: its session ends, its row still says running)
    code, data = cli.json("status")
    [progress] = data["migrations"][1]["backfill"]
    assert (progress["status"], progress["live_workers"]) == ("interrupted", 0)
    code, out, _ = cli("status")
    assert code == 0 and "interrupted" in out
    assert f"      zdmigrate backfill {RENAME}" in out.splitlines()


def _items(dsn: str, rows: int, *, analyze: bool) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        # no autovacuum: the test decides whether the table has statistics
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, old int NOT NULL, new int) "
                     "WITH (autovacuum_enabled = false)")
        conn.execute("INSERT INTO items (id, old) SELECT g, g FROM generate_series(1, %s) g",
                      [rows])
        if analyze:
            conn.execute("ANALYZE items")


def test_backfill_of_a_never_analyzed_table_reports_the_true_total(
    dsn: str, db_url: str
) -> None:
    from zdmigrate.backfill import BackfillEvent, run_backfill
    from zdmigrate.config import Settings
    from zdmigrate.steps import BackfillStep

    _items(dsn, 3000, analyze=False)
    events: list[BackfillEvent] = []
    result = run_backfill(Settings(database_url=db_url), migration_id="m1",
                          step=BackfillStep("items", {"new": "old"}, where="new IS NULL"),
                          reporter=events.append, batch_size=200, max_replication_lag=0)
    assert result.done
    progress = [e for e in events if e.kind == "progress"]
    assert progress and all(e.rows_total == 3000 and not e.total_is_estimate for e in progress)
    # never 100% with rows to go
    assert all(e.percent is not None and (e.percent < 100 or e.rows_done == 3000)
               for e in progress)


def test_row_total_counts_when_statistics_are_missing_or_stale_and_says_estimate_else(
    dsn: str,
) -> None:
    import psycopg

    from zdmigrate.backfill.keys import TableRef, row_total

    _items(dsn, 2000, analyze=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        oid = conn.execute("SELECT 'items'::regclass::oid").fetchone()
        assert oid is not None
        table = TableRef("public", "items", int(oid[0]))
        assert row_total(conn, table) == (2000, False)  # never ANALYZEd: counted
        conn.execute("ANALYZE items")
        total, estimate = row_total(conn, table)
        assert estimate and total is not None and 1500 <= total <= 2500
        with psycopg.connect(dsn, autocommit=True) as writer:  # its stats are sent as it ends
            writer.execute("INSERT INTO items (id, old) "
                           "SELECT g, g FROM generate_series(2001, 6000) g")
        for _ in range(100):  # the statistics arrive a moment later
            if row_total(conn, table) == (6000, False):
                break
            time.sleep(0.05)
        assert row_total(conn, table) == (6000, False)  # stale: counted


def test_a_paused_run_has_no_eta_and_says_how_to_resume() -> None:
    from zdmigrate.backfill.progress import BackfillEvent, ProgressMeter
    from zdmigrate.output.progress import describe

    events: list[BackfillEvent] = []
    meter = ProgressMeter(events.append, migration_id="m1", table="public.items", workers=1,
                          rows_done=0, rows_updated=0, rows_total=1000, total_is_estimate=True)
    meter.batch(100, 100, 1000, 100)
    meter.batch(200, 200, 1000, 100)
    meter.note("paused", "paused by an operator", state="operator")
    assert events[-1].eta_seconds is None and "ETA" not in describe(events[-1])
    assert "/~1,000 rows" in describe(events[1])


def test_the_demos_live_view_fits_80_by_24_with_the_pipeline_shown() -> None:
    from rich.console import Console

    from zdmigrate.demo.progress import DemoProgress
    from zdmigrate.demo.traffic import TrafficStats
    from zdmigrate.output.demo import _LiveRenderer
    from zdmigrate.phases import Phase

    ids = [f"{n:04d}_migration_number_{n}" for n in range(1, 21)]
    progress = DemoProgress(strategy="rolling", database="embedded PostgreSQL 18",
                            migrations=ids, phases=dict.fromkeys(ids, Phase.EXPAND),
                            backfills=[{"migration_id": ids[2], "table_name": "users",
                                        "rows_done": 11_234, "rows_total": 20_000,
                                        "status": "running"}],
                            running={"1.4": 3, "1.5": 3, "3.4": 1}, seen={"1.4": 3, "1.5": 3},
                            shares={"1.4": 0.5, "1.5": 0.4, "3.4": 0.1})
    stats = TrafficStats()
    for version in ("1.4", "1.5", "3.4"):
        for _ in range(1234):
            stats.record(version, 0.002)
    for n in range(12):
        progress.emit("phase", f"`zdmigrate phase advance {ids[n]}`: done, step {n}")
    console = Console(width=80, height=24, record=True, force_terminal=True)
    renderer = _LiveRenderer(progress, stats, console)
    console.print(renderer.render())
    text = console.export_text()
    lines = text.rstrip("\n").splitlines()
    assert len(lines) <= 24, text
    assert max(len(line) for line in lines) <= 80
    assert "…" not in text, text  # no header or number cut
    assert "pipeline" in text and "step 11" in text  # the newest step is shown
    assert "3,702" in text  # all requests, whole
