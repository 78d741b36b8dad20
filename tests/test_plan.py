"""`plan` renders the SQL of every phase offline: exact SQL for the example, no database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import EXAMPLE
from zdmigrate import cli
from zdmigrate.config import Settings
from zdmigrate.engine import plan
from zdmigrate.migration import load_migrations
from zdmigrate.phases import Phase
from zdmigrate.steps import BackfillStep, SQLStep


def _settings() -> Settings:
    return Settings.load({"migrations": str(EXAMPLE)}, environ={},
                         pyproject=Path("/nonexistent/pyproject.toml"))


def _sql(migration_id: str, phase: Phase, direction: str = "advance") -> list[str]:
    (migration,) = [m for m in load_migrations(EXAMPLE) if m.id == migration_id]
    return [" ".join(s.sql.split()) for s in migration.render(phase, direction)
            if isinstance(s, SQLStep)]


def test_example_is_ordered_by_revision_map() -> None:
    ids = [m.id for m in load_migrations(EXAMPLE)]
    assert ids[:2] == ["0001_create_users", "0002_rename_users_name"]


def test_rename_expand_sql() -> None:
    steps = _sql("0002_rename_users_name", Phase.EXPAND)
    assert steps[0] == "ALTER TABLE public.users ADD COLUMN full_name text"
    assert steps[1].startswith(
        "CREATE OR REPLACE FUNCTION public.zdm_0002_users_name_sync() RETURNS trigger"
    )
    assert steps[2] == (
        "CREATE TRIGGER zdm_0002_users_name_sync BEFORE INSERT OR UPDATE ON public.users "
        "FOR EACH ROW EXECUTE FUNCTION public.zdm_0002_users_name_sync()"
    )
    assert len(steps) == 3


def test_rename_contract_and_rollback_sql() -> None:
    assert _sql("0002_rename_users_name", Phase.CONTRACT) == [
        "ALTER TABLE public.users ALTER COLUMN full_name SET NOT NULL",
        "ALTER TABLE public.users DROP CONSTRAINT users_full_name_not_null",
        "ALTER TABLE public.users ALTER COLUMN name DROP NOT NULL",
        "DROP TRIGGER zdm_0002_users_name_sync ON public.users",
        "DROP FUNCTION public.zdm_0002_users_name_sync()",
        "ALTER TABLE public.users DROP COLUMN name",
    ]
    assert _sql("0002_rename_users_name", Phase.EXPAND, "rollback") == [
        "DROP TRIGGER IF EXISTS zdm_0002_users_name_sync ON public.users",
        "DROP FUNCTION IF EXISTS public.zdm_0002_users_name_sync()",
        "ALTER TABLE public.users DROP COLUMN IF EXISTS full_name",
    ]


def test_rename_backfill_is_a_batched_step() -> None:
    (migration,) = [m for m in load_migrations(EXAMPLE) if m.id == "0002_rename_users_name"]
    (step,) = migration.render(Phase.BACKFILL)
    assert isinstance(step, BackfillStep)
    assert step.table == "users"
    assert dict(step.set) == {"full_name": "name"}
    assert step.where == "full_name IS DISTINCT FROM name"


def test_plain_alembic_revision_renders_offline_as_expand() -> None:
    steps = _sql("0001_create_users", Phase.EXPAND)
    assert steps[0].startswith("CREATE TABLE users ( id BIGINT GENERATED ALWAYS AS IDENTITY")
    assert steps[1].startswith("CREATE TABLE orders")
    assert "FOREIGN KEY(user_id) REFERENCES users (id)" in steps[1]
    assert _sql("0001_create_users", Phase.EXPAND, "rollback") == [
        "DROP TABLE orders", "DROP TABLE users",
    ]
    assert _sql("0001_create_users", Phase.CONTRACT) == []


def test_steps_point_at_the_line_that_wrote_them() -> None:
    (migration,) = [m for m in load_migrations(EXAMPLE) if m.id == "0002_rename_users_name"]
    lines = migration.path.read_text().splitlines()
    for step in migration.render(Phase.CONTRACT):
        assert step.source is not None
        assert step.source.path == str(migration.path)
        assert "ctx.execute(" in lines[step.source.line - 1]
    (m1,) = [m for m in load_migrations(EXAMPLE) if m.id == "0001_create_users"]
    first = m1.render(Phase.EXPAND)[0]
    assert first.source is not None
    assert "op.create_table(" in m1.path.read_text().splitlines()[first.source.line - 1]


def test_plan_covers_every_phase_of_every_migration() -> None:
    plans = plan(_settings())
    ids = {m.id for m in load_migrations(EXAMPLE)}
    assert {(p.migration.id, p.phase) for p in plans} == {
        (i, ph) for i in ids for ph in Phase if ph is not Phase.PENDING
    }


def test_plan_cli_json_needs_no_database(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZDMIGRATE_DATABASE_URL", raising=False)
    code = cli.run(["plan", "0002_rename_users_name", "--migrations", str(EXAMPLE),
                    "--format", "json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    (entry,) = data["migrations"]
    phases = {p["phase"]: p for p in entry["phases"]}
    assert phases["contract"]["steps"][-1]["sql"] == "ALTER TABLE public.users DROP COLUMN name"
    assert phases["expand"]["rollback"][0]["sql"].startswith("DROP TRIGGER IF EXISTS")


def test_plan_text_shows_sql(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.run(["--migrations", str(EXAMPLE), "plan", "0002"])
    out = capsys.readouterr().out
    assert code == 0
    assert "ALTER TABLE public.users DROP COLUMN name;" in out
    assert "-- switch-read:" in out
