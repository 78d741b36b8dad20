"""The gate's compat rules for one migration, phase by phase (no database needed)."""

from __future__ import annotations

import json

import pytest
from packaging.version import Version

from zdmigrate.compat import parse_compat
from zdmigrate.errors import BadInput
from zdmigrate.gate import GateMigration, decide, deploy_blockers
from zdmigrate.output import render_gate as render
from zdmigrate.phases import Phase

COMPAT = parse_compat(
    {"shop": {"dual_write_from": "1.5", "read_new_from": "2.0", "old_unused_from": "2.0"}},
    "0002_rename.py",
)


def checks(version: str, phase: Phase, *, app_dual_writes_needed: bool = True) -> list[str]:
    m = GateMigration("0002_rename", COMPAT, phase, app_dual_writes_needed)
    return [b.check for b in deploy_blockers("shop", Version(version), m)]


# (version, phase) -> blockers: every answer across the phases of a rename
TABLE = {
    ("2.0", Phase.PENDING): ["gate-read-new-too-early"],
    ("2.0", Phase.EXPAND): ["gate-read-new-too-early"],
    ("2.0", Phase.BACKFILL): ["gate-read-new-too-early"],
    ("2.0", Phase.SWITCH_READ): [],
    ("2.0", Phase.CONTRACT): [],
    ("1.5", Phase.PENDING): [],
    ("1.5", Phase.BACKFILL): [],
    ("1.5", Phase.SWITCH_READ): [],
    ("1.5", Phase.CONTRACT): ["gate-old-shape-dropped"],
    ("1.9.9", Phase.CONTRACT): ["gate-old-shape-dropped"],
    ("1.4", Phase.EXPAND): [],
    ("1.4", Phase.DUAL_WRITE): ["gate-dual-write-needed"],
    ("1.4", Phase.SWITCH_READ): ["gate-dual-write-needed"],
    ("1.4", Phase.CONTRACT): ["gate-old-shape-dropped"],
}


@pytest.mark.parametrize(("version", "phase"), list(TABLE))
def test_every_answer_across_a_rename(version: str, phase: Phase) -> None:
    assert checks(version, phase) == TABLE[(version, phase)]


def test_sync_triggers_lift_the_dual_write_rule() -> None:
    assert checks("1.4", Phase.SWITCH_READ, app_dual_writes_needed=False) == []


def test_messages_say_what_unblocks() -> None:
    m = GateMigration("0002_rename", COMPAT, Phase.BACKFILL)
    [b] = deploy_blockers("shop", Version("2.0"), m)
    assert "zdmigrate phase advance 0002_rename --to switch-read" in b.message
    m = GateMigration("0002_rename", COMPAT, Phase.CONTRACT)
    [b] = deploy_blockers("shop", Version("1.9"), m)
    assert "never go out again" in b.message and "deploy shop >= 2.0" in b.message


def test_other_apps_are_not_concerned() -> None:
    m = GateMigration("0002_rename", COMPAT, Phase.PENDING)
    assert deploy_blockers("admin", Version("9"), m) == []


def test_unknown_phase_is_not_proven_and_listed() -> None:
    m = GateMigration("0002_rename", COMPAT, None)
    answer = decide("shop", "2.0", [m], lint_findings=[], database_note="no database URL")
    assert not answer.allowed
    assert [b.check for b in answer.blockers] == ["gate-not-checked"]
    assert "no database URL" in answer.not_checked[0]
    other = decide("admin", "1.0", [m], lint_findings=[], database_note="no database URL",
                   new_app=True)
    assert other.allowed and other.not_checked == []


def test_an_app_no_compat_and_no_fleet_row_knows_is_not_proven() -> None:
    m = GateMigration("0002_rename", COMPAT, Phase.PENDING)
    answer = decide("shp", "2.0", [m], lint_findings=[], fleet_apps=["admin"])
    assert [b.check for b in answer.blockers] == ["gate-unknown-app"]
    assert "known apps: admin, shop" in answer.blockers[0].message
    assert decide("admin", "2.0", [m], lint_findings=[], fleet_apps=["admin"]).allowed
    assert decide("shp", "2.0", [m], lint_findings=[], fleet_apps=[], new_app=True).allowed


def test_bad_version_is_bad_input() -> None:
    with pytest.raises(BadInput, match="not a PEP 440 version"):
        decide("shop", "latest", [], lint_findings=[])


def test_json_and_github_output() -> None:
    m = GateMigration("0002_rename", COMPAT, Phase.EXPAND)
    answer = decide("shop", "2.0", [m], lint_findings=None)
    data = json.loads(render(answer, "json"))
    assert data["allowed"] is False
    assert data["reasons"][0]["check"] == "gate-read-new-too-early"
    assert data["reasons"][0]["migration"] == "0002_rename"
    assert data["not_checked"] == ["lint: the linter (zdmigrate.lint) is not available"]
    github = render(answer, "github").splitlines()
    assert github[0].startswith("::error title=zdmigrate gate%3A gate-read-new-too-early::")
    assert github[1].startswith("::notice ")
    assert github[-1] == "zdmigrate gate: shop 2.0 may NOT go out (1 reason)"
