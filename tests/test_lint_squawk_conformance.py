"""Conformance with squawk: zdmigrate agrees with every case of each squawk rule it covers.

The corpus (149 cases from squawk's unit tests, see shared/corpora/README.md)
lives beside the repository: ``<repo>/../shared/corpora``. A missing corpus is a
failure, not a skip: the conformance claim must never pass vacuously.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from zdmigrate.lint import all_rules, lint_sql
from zdmigrate.phases import Phase

REPO = Path(__file__).resolve().parents[1]
CORPUS_NAME = Path("shared") / "corpora" / "squawk-rule-cases.json"


def _corpus_path() -> Path:
    """``<repo>/../shared``; from a git worktree, beside the main checkout instead."""
    candidates = [REPO.parent / CORPUS_NAME]
    common = subprocess.run(
        ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
        cwd=REPO, capture_output=True, text=True, check=False,
    ).stdout.strip()
    if common:
        candidates.append(Path(common).parent.parent / CORPUS_NAME)
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"squawk corpus not found; looked at {', '.join(map(str, candidates))}")


CORPUS = _corpus_path()

#: squawk rule -> the zdmigrate rules that cover the same risk
COVERED: dict[str, tuple[str, ...]] = {
    "adding-field-with-default": ("add-column-volatile-default", "add-column-generated-stored"),
    "adding-foreign-key-constraint": ("constraint-not-valid",),
    "adding-not-nullable-field": ("set-not-null", "set-not-null-without-check"),
    "adding-required-field": ("add-column-not-null-without-default",),
    "adding-serial-primary-key-field": ("unique-constraint-without-index",),
    "ban-alter-domain-with-add-constraint": ("alter-domain-add-constraint",),
    "ban-char-field": ("prefer-text-over-char",),
    "ban-drop-column": ("drop-column",),
    "ban-drop-database": ("drop-database",),
    "ban-drop-table": ("drop-table",),
    "ban-truncate-cascade": ("truncate-cascade",),
    "ban-uncommitted-transaction": ("uncommitted-transaction",),
    "changing-column-type": ("change-column-type",),
    "constraint-missing-not-valid": ("constraint-not-valid", "validate-in-same-transaction"),
    "disallowed-unique-constraint": ("unique-constraint-without-index",),
    "identifier-too-long": ("identifier-too-long",),
    "prefer-bigint-over-int": ("prefer-bigint",),
    "prefer-identity": ("prefer-identity",),
    "prefer-text-field": ("prefer-text",),
    "prefer-timestamp-tz": ("prefer-timestamptz",),
    "renaming-column": ("rename-column",),
    "renaming-table": ("rename-table",),
    "require-concurrent-index-creation": ("create-index-not-concurrently",),
    "require-concurrent-index-deletion": ("drop-index-not-concurrently",),
    "transaction-nesting": ("transaction-nesting",),
}

#: squawk rules zdmigrate deliberately does not cover, and why
NOT_COVERED: dict[str, str] = {
    "ban-create-domain-with-constraint": (
        "creating a domain locks no existing table; the risk is adding a constraint to a "
        "domain in use later, which alter-domain-add-constraint reports"
    ),
    "ban-drop-not-null": (
        "DROP NOT NULL only widens what a column accepts and is metadata-only; it is a "
        "normal expand step (old column made optional before new versions stop writing it)"
    ),
    "ban-duplicate-column-assignments": (
        "PostgreSQL itself rejects duplicate assignments when the statement runs, before "
        "anything changes; no deploy risk to lint for"
    ),
    "prefer-bigint-over-smallint": (
        "smallint is chosen on purpose for small closed domains; prefer-bigint targets "
        "the 32-bit ids that actually overflow"
    ),
    "require-enum-value-ordering": (
        "appending an enum value without BEFORE/AFTER is safe; value order is a design "
        "choice, not a deploy risk"
    ),
    "require-table-schema": (
        "zdmigrate runs migrations on a connection whose search_path the operator sets; "
        "requiring schema-qualified names is a house style, not a safety rule"
    ),
    "require-timeout-settings": (
        "zdmigrate's executor sets lock_timeout and statement_timeout (SET LOCAL) on every "
        "step itself, so migrations must not need to"
    ),
    "require-lock-timeout": "as require-timeout-settings: the executor sets lock_timeout per step",
    "require-statement-timeout": (
        "as require-timeout-settings: the executor sets statement_timeout per step"
    ),
}


#: cases whose SQL PostgreSQL itself rejects (squawk's own parser is lenient); zdmigrate
#: reports them as syntax-error, an error as well, and a test proves PostgreSQL agrees
REJECTED_BY_POSTGRESQL = {
    "ban_char_field::all_the_types": "`int array[]` is not PostgreSQL grammar (ARRAY takes [n] or nothing)",
}


def _cases() -> list[dict[str, Any]]:
    # deliberately not guarded: a missing corpus must fail collection loudly
    data = json.loads(CORPUS.read_text())
    return list(data["cases"])


CASES = _cases()
ENABLE_ALL = {"enable": ["all"]}


def test_every_squawk_rule_is_mapped_or_explained() -> None:
    rules = {c["squawk_rule"] for c in CASES}
    assert len(CASES) == 149
    assert rules == set(COVERED) | set(NOT_COVERED)
    assert not set(COVERED) & set(NOT_COVERED)
    known = set(all_rules())
    for ours in COVERED.values():
        assert set(ours) <= known


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c["squawk_rule"] in COVERED and c["case"] not in REJECTED_BY_POSTGRESQL],
    ids=lambda c: c["case"],
)
def test_agrees_with_squawk(case: dict[str, Any]) -> None:
    assert case["assume_in_transaction"] is False
    ours = COVERED[case["squawk_rule"]]
    found = lint_sql(
        case["sql"], phase=Phase.EXPAND, pg_version=case["pg_version"], config=ENABLE_ALL
    )
    fired = sorted({v.rule for v in found if v.rule in ours})
    assert not [v for v in found if v.rule == "syntax-error"], found
    if case["expect"] == "violation":
        assert fired, f"expected one of {ours} to fire; got {[v.rule for v in found]}"
    else:
        assert not fired, f"expected none of {ours}; got {[(v.rule, v.message) for v in found]}"


@pytest.mark.parametrize("case_id", sorted(REJECTED_BY_POSTGRESQL))
def test_sql_postgresql_rejects_is_a_syntax_error(case_id: str, dsn: str) -> None:
    import psycopg

    (case,) = [c for c in CASES if c["case"] == case_id]
    assert case["expect"] == "violation"
    found = lint_sql(case["sql"], config=ENABLE_ALL)
    assert [v.rule for v in found if v.is_error] == ["syntax-error"]
    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.SyntaxError):
        conn.execute(case["sql"])
