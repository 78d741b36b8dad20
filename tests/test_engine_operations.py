"""How the engine runs operations: requirements before expand, in order, and on a rerun."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.helpers import copy_example, settings_for, write_migration
from zdmigrate import engine
from zdmigrate.config import Settings
from zdmigrate.errors import OperationInvalid
from zdmigrate.migration import load_migrations
from zdmigrate.phases import Phase

TABLE_THEN_INDEX = '''
import sqlalchemy as sa
from zdmigrate import ops

revision = "0003_tags"
down_revision = "0002_rename_users_name"

operations = [
    ops.CreateTable("tags", sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("label", sa.Text, nullable=False)),
    ops.CreateIndex("tags_label_idx", "tags", ["label"]),
]
'''


def _ready(tmp_path: Path, db_url: str, body: str) -> Settings:
    folder = copy_example(tmp_path, upto="0002_rename_users_name")
    write_migration(folder, "0003_tags", body)
    settings = settings_for(db_url, folder)
    engine.advance(settings)  # 0001
    engine.advance(settings, "0002_rename_users_name", to="switch-read")
    return settings


def test_an_operation_may_require_what_an_earlier_one_creates(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    settings = _ready(tmp_path, db_url, TABLE_THEN_INDEX)
    engine.advance(settings, "0003_tags", to="expand")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                            "'public.tags_label_idx'::regclass").fetchone() == (True,)


def test_unmet_requirements_list_every_problem_and_change_nothing(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    body = TABLE_THEN_INDEX.replace('ops.CreateIndex("tags_label_idx", "tags", ["label"])',
                                    'ops.CreateIndex("tags_label_idx", "tagz", ["label"]),\n'
                                    '    ops.RenameColumn("users", "nickname", "handle")')
    settings = _ready(tmp_path, db_url, body)
    with pytest.raises(OperationInvalid) as info:
        engine.advance(settings, "0003_tags", to="expand")
    assert info.value.exit_code == 2
    assert len(info.value.problems) >= 2
    assert any("tagz" in p for p in info.value.problems)
    assert any("nickname" in p for p in info.value.problems)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('public.tags')").fetchone() == (None,)


def test_requirements_are_not_rechecked_when_expand_resumes(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    settings = _ready(tmp_path, db_url, TABLE_THEN_INDEX)
    # a run that died after its first step: the table exists, the index does not
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.tags (id bigint PRIMARY KEY, label text NOT NULL)")
        (migration,) = [m for m in load_migrations(settings.migrations)
                        if m.id == "0003_tags"]
        first = migration.render(Phase.EXPAND)[0]
        conn.execute("INSERT INTO zdmigrate.steps (migration_id, phase, direction, step_index, "
                     "step_key) VALUES ('0003_tags', 'expand', 'advance', 0, %s)", [first.key])
    engine.advance(settings, "0003_tags", to="expand")  # "tags must not exist" is not asked again
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('public.tags_label_idx') IS NOT NULL"
                            ).fetchone() == (True,)
