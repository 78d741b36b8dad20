"""A destructive contract with no `compat` is "not proven": refused unless overridden."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.helpers import copy_example, declare_deployed, settings_for, write_migration
from zdmigrate import engine
from zdmigrate.config import Settings
from zdmigrate.errors import PhaseRefused

DROP_WITHOUT_COMPAT = '''
revision = "0003_drop_email"
down_revision = "0002_rename_users_name"

def expand(ctx):
    ctx.execute("ALTER TABLE users ALTER COLUMN email DROP NOT NULL")

def rollback_expand(ctx):
    pass

def contract(ctx):
    ctx.execute("ALTER TABLE users DROP COLUMN email")
'''

HARMLESS_WITHOUT_COMPAT = '''
revision = "0003_drop_email"
down_revision = "0002_rename_users_name"

def expand(ctx):
    ctx.execute("ALTER TABLE users ADD COLUMN nickname text")

def rollback_expand(ctx):
    ctx.execute("ALTER TABLE users DROP COLUMN IF EXISTS nickname")

def contract(ctx):
    ctx.execute("COMMENT ON COLUMN users.nickname IS 'chosen by the user'")
'''


def _ready(tmp_path: Path, db_url: str, body: str) -> Settings:
    folder = copy_example(tmp_path, upto="0002_rename_users_name")
    write_migration(folder, "0003_drop_email", body)
    settings = settings_for(db_url, folder)
    engine.advance(settings)
    declare_deployed(settings)  # shop 2.0: 0002's contract is proven
    engine.advance(settings, "0002_rename_users_name", to="contract")
    engine.advance(settings, "0003_drop_email", to="switch-read")
    return settings


def _has_email(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM information_schema.columns "
                           "WHERE table_name = 'users' AND column_name = 'email'").fetchone()
    return bool(row and row[0])


def test_destructive_contract_without_compat_is_not_proven(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    settings = _ready(tmp_path, db_url, DROP_WITHOUT_COMPAT)
    with pytest.raises(PhaseRefused) as info:
        engine.advance(settings, "0003_drop_email", to="contract")
    (blocker,) = info.value.blockers
    assert blocker.check == "fleet-not-proven"
    assert "ALTER TABLE users DROP COLUMN email" in blocker.message
    assert "declares no compat" in blocker.message
    assert _has_email(dsn)
    engine.advance(settings, "0003_drop_email", to="contract",
                   override_reason="email is unused since shop 1.2, checked by hand")
    assert not _has_email(dsn)
    with psycopg.connect(dsn) as conn:
        assert conn.execute(
            "SELECT override_reason FROM zdmigrate.phase_log WHERE migration_id = "
            "'0003_drop_email' AND to_phase = 'contract' AND outcome = 'done'"
        ).fetchone() == ("email is unused since shop 1.2, checked by hand",)


def test_harmless_contract_without_compat_needs_no_proof(tmp_path: Path, db_url: str) -> None:
    settings = _ready(tmp_path, db_url, HARMLESS_WITHOUT_COMPAT)
    transitions = engine.advance(settings, "0003_drop_email", to="contract")
    assert transitions[-1].to_phase.value == "contract"
