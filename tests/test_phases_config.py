"""Phases order and parsing; settings precedence; DSN redaction. No database."""

from __future__ import annotations

from pathlib import Path

import pytest

from zdmigrate.config import Settings, parse_duration, redact_url
from zdmigrate.errors import ConfigError, UnknownPhase
from zdmigrate.phases import Phase, phases_between


def test_phases_are_ordered() -> None:
    assert Phase.PENDING < Phase.EXPAND < Phase.DUAL_WRITE < Phase.BACKFILL
    assert Phase.BACKFILL < Phase.SWITCH_READ < Phase.CONTRACT
    assert Phase.EXPAND.next is Phase.DUAL_WRITE
    assert Phase.CONTRACT.next is None
    assert phases_between(Phase.EXPAND, Phase.SWITCH_READ) == [
        Phase.DUAL_WRITE, Phase.BACKFILL, Phase.SWITCH_READ,
    ]


@pytest.mark.parametrize("name", ["dual-write", "dual_write", "DUAL_WRITE", " Dual-Write "])
def test_phase_parse_accepts_spellings(name: str) -> None:
    assert Phase.parse(name) is Phase.DUAL_WRITE


def test_unknown_phase_is_bad_input() -> None:
    with pytest.raises(UnknownPhase) as info:
        Phase.parse("contracts")
    assert info.value.exit_code == 2
    assert "switch-read" in str(info.value)


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[tool.zdmigrate]\nmigrations = "db/migrations"\nlock_timeout = "5s"\n'
        'state_schema = "from_file"\nretry_budget = 90\n[tool.zdmigrate.lint]\npg_version = 16\n'
    )
    env = {"ZDMIGRATE_LOCK_TIMEOUT": "3s", "ZDMIGRATE_STATE_SCHEMA": "from_env"}
    settings = Settings.load({"state_schema": "from_flag", "lock_timeout": None},
                             environ=env, pyproject=pyproject)
    assert settings.state_schema == "from_flag"
    assert settings.lock_timeout == 3.0
    assert settings.retry_budget == 90.0
    assert settings.migrations == tmp_path / "db" / "migrations"
    assert settings.lint == {"pg_version": 16}


def test_defaults() -> None:
    settings = Settings.load(environ={}, pyproject=Path("/nonexistent/pyproject.toml"))
    assert settings.lock_timeout == 2.0
    assert settings.retry_budget >= 60.0
    assert settings.state_schema == "zdmigrate"


@pytest.mark.parametrize(("text", "seconds"), [("2s", 2.0), ("250ms", 0.25), ("1min", 60.0),
                                               (3, 3.0), ("1.5", 1.5)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        Settings.load({"lock_timeout": "soon"}, environ={}, pyproject=tmp_path / "none.toml")
    with pytest.raises(ConfigError):
        Settings.load({"state_schema": "x; drop table users"}, environ={},
                      pyproject=tmp_path / "none.toml")
    bad = tmp_path / "pyproject.toml"
    bad.write_text("[tool.zdmigrate]\nlock_timeot = 3\n")
    with pytest.raises(ConfigError, match="lock_timeot"):
        Settings.load(environ={}, pyproject=bad)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cret@db:5432/shop", "postgresql://app:***@db:5432/shop"),
        ("postgresql+psycopg://app:s3cret@db/shop", "postgresql+psycopg://app:***@db/shop"),
        ("postgresql://db/shop?password=s3cret&sslmode=require",
         "postgresql://db/shop?password=***&sslmode=require"),
        ("host=db password=s3cret dbname=shop", "host=db password=*** dbname=shop"),
        ("postgresql://app@db/shop", "postgresql://app@db/shop"),
    ],
)
def test_redact_url_hides_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url)
