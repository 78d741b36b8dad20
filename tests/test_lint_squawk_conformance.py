"""Conformance with squawk: zdmigrate reports the risks of each squawk rule it covers.

The project's own cases (``tests/data/squawk_risk_cases.json``, SQL written for
zdmigrate) give, for every covered squawk rule, statements that must be reported
and statements that must not; they always run. squawk's own unit-test cases are
an optional extra: point ``ZDMIGRATE_SQUAWK_CORPUS`` at a ``squawk-rule-cases.json``
(see docs/testing.md) and every case of it is checked too; without it those tests
are skipped, with the reason in pytest's summary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from zdmigrate.lint import all_rules, lint_sql
from zdmigrate.phases import Phase

REPO = Path(__file__).resolve().parents[1]
OWN_CASES_FILE = Path(__file__).with_name("data") / "squawk_risk_cases.json"
CORPUS_ENV = "ZDMIGRATE_SQUAWK_CORPUS"
ENABLE_ALL = {"enable": ["all"]}


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


def _own_cases() -> list[dict[str, Any]]:
    return list(json.loads(OWN_CASES_FILE.read_text())["cases"])


def _corpus_cases() -> list[dict[str, Any]]:
    """squawk's cases when the environment names the corpus; [] when it does not.

    A path that is given but unreadable fails collection: asking for the corpus and
    silently not checking it would pass vacuously.
    """
    path = os.environ.get(CORPUS_ENV)
    if not path:
        return []
    try:
        return list(json.loads(Path(path).read_text())["cases"])
    except (OSError, ValueError, KeyError) as exc:
        raise pytest.UsageError(f"{CORPUS_ENV}={path}: cannot read the squawk corpus: {exc}") from None


OWN_CASES = _own_cases()
CORPUS = _corpus_cases()
NO_CORPUS = (
    f"the optional squawk corpus is not given: set {CORPUS_ENV}=/path/to/squawk-rule-cases.json "
    "to check squawk's own cases too (docs/testing.md)"
)
corpus_only = pytest.mark.skipif(not CORPUS, reason=NO_CORPUS)


def _check(sql_text: str, squawk_rule: str, expect: str, pg_version: int) -> None:
    ours = COVERED[squawk_rule]
    found = lint_sql(sql_text, phase=Phase.EXPAND, pg_version=pg_version, config=ENABLE_ALL)
    fired = sorted({v.rule for v in found if v.rule in ours})
    assert not [v for v in found if v.rule == "syntax-error"], found
    if expect == "violation":
        assert fired, f"expected one of {ours} to fire; got {[v.rule for v in found]}"
    else:
        assert expect == "clean", expect
        assert not fired, f"expected none of {ours}; got {[(v.rule, v.message) for v in found]}"


# -- the project's own cases ------------------------------------------------------------


def test_mapping_names_real_rules() -> None:
    assert not set(COVERED) & set(NOT_COVERED)
    known = set(all_rules())
    for ours in COVERED.values():
        assert ours and set(ours) <= known


def test_own_cases_cover_every_mapped_squawk_rule_both_ways() -> None:
    ids = [(c["squawk_rule"], c["case"]) for c in OWN_CASES]
    assert len(ids) == len(set(ids)), "case names repeat"
    assert {c["squawk_rule"] for c in OWN_CASES} == set(COVERED)
    for rule in COVERED:
        expects = {c["expect"] for c in OWN_CASES if c["squawk_rule"] == rule}
        assert expects == {"violation", "clean"}, f"{rule}: has only {expects}"


@pytest.mark.parametrize("case", OWN_CASES, ids=lambda c: f"{c['squawk_rule']}::{c['case']}")
def test_own_case(case: dict[str, Any]) -> None:
    _check(case["sql"], case["squawk_rule"], case["expect"], case.get("pg_version", 15))


def test_nothing_outside_the_repository_is_read() -> None:
    """The suite runs from a fresh clone with nothing beside it (.ci/run proves it)."""
    needle = "../" + "shared"
    offenders = [
        str(path.relative_to(REPO))
        for top in ("src", "tests")
        for path in (REPO / top).rglob("*")
        if path.is_file() and path.suffix in (".py", ".json", ".toml", ".cfg", ".txt")
        and needle in path.read_text(errors="replace")
    ]
    assert offenders == []


# -- the optional external corpus: squawk's own unit-test cases --------------------------


@corpus_only
def test_every_squawk_rule_of_the_corpus_is_mapped_or_explained() -> None:
    rules = {c["squawk_rule"] for c in CORPUS}
    assert rules == set(COVERED) | set(NOT_COVERED)


@corpus_only
@pytest.mark.parametrize(
    "case",
    [c for c in CORPUS if c["squawk_rule"] in COVERED and c["case"] not in REJECTED_BY_POSTGRESQL]
    or [None],
    ids=lambda c: c["case"] if c else "no-corpus",
)
def test_agrees_with_squawk(case: dict[str, Any]) -> None:
    assert case["assume_in_transaction"] is False
    _check(case["sql"], case["squawk_rule"], case["expect"], case["pg_version"])


@corpus_only
@pytest.mark.parametrize(
    "case_id", sorted(c for c in REJECTED_BY_POSTGRESQL if any(k["case"] == c for k in CORPUS))
    or [None],
)
def test_sql_postgresql_rejects_is_a_syntax_error(case_id: str, dsn: str) -> None:
    import psycopg

    (case,) = [c for c in CORPUS if c["case"] == case_id]
    assert case["expect"] == "violation"
    found = lint_sql(case["sql"], config=ENABLE_ALL)
    assert [v.rule for v in found if v.is_error] == ["syntax-error"]
    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.SyntaxError):
        conn.execute(case["sql"])
