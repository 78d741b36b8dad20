"""Every rule fires on its bad examples and not on its good ones; phase policy and versions."""

from __future__ import annotations

import pytest

from zdmigrate.lint import Category, Severity, all_rules, get_rule, lint_sql
from zdmigrate.lint.rules import Example, Rule
from zdmigrate.phases import WORK_PHASES, Phase

RULES = list(all_rules().values())
ENABLE_ALL = {"enable": ["all"]}


def _examples(kind: str) -> list[tuple[Rule, Example]]:
    return [(r, ex) for r in RULES for ex in getattr(r, kind)]


def _rules_fired(ex: Example) -> set[str]:
    found = lint_sql(ex.sql, phase=ex.phase, pg_version=ex.pg_version, config=ENABLE_ALL)
    return {v.rule for v in found}


def test_rule_ids_are_stable_kebab_case_and_complete() -> None:
    assert len(RULES) >= 45
    for rule in RULES:
        assert rule.id == rule.id.lower() and " " not in rule.id and "_" not in rule.id
        assert rule.summary and rule.why and rule.fix, rule.id
        assert rule.bad and rule.good, f"{rule.id} needs its own bad and good examples"


@pytest.mark.parametrize(("rule", "example"), _examples("bad"), ids=lambda x: getattr(x, "id", ""))
def test_bad_example_fires(rule: Rule, example: Example) -> None:
    assert rule.id in _rules_fired(example)


@pytest.mark.parametrize(("rule", "example"), _examples("good"), ids=lambda x: getattr(x, "id", ""))
def test_good_example_is_clean_for_that_rule(rule: Rule, example: Example) -> None:
    assert rule.id not in _rules_fired(example)


DESTRUCTIVE = [
    ("drop-column", "ALTER TABLE users DROP COLUMN email"),
    ("drop-table", "DROP TABLE users"),
    ("drop-schema", "DROP SCHEMA old"),
    ("drop-view", "DROP MATERIALIZED VIEW stats"),
    ("drop-type", "DROP DOMAIN price"),
    ("drop-sequence", "DROP SEQUENCE s"),
    ("drop-constraint", "ALTER TABLE users DROP CONSTRAINT users_email_key"),
    ("drop-index", "DROP INDEX CONCURRENTLY users_email_idx"),
    ("rename-column", "ALTER TABLE users RENAME name TO full_name"),
    ("rename-table", "ALTER VIEW v RENAME TO w"),
    ("rename-enum-value", "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'"),
    ("set-schema", "ALTER TYPE mood SET SCHEMA other"),
    ("set-not-null", "ALTER TABLE users ALTER email SET NOT NULL"),
    ("add-column-not-null-without-default", "ALTER TABLE users ADD COLUMN n int NOT NULL"),
    ("truncate", "TRUNCATE users"),
]


@pytest.mark.parametrize(("rule_id", "sql"), DESTRUCTIVE)
def test_destructive_rules_are_errors_outside_contract_and_allowed_in_contract(
    rule_id: str, sql: str
) -> None:
    assert get_rule(rule_id).category is Category.DESTRUCTIVE
    for phase in WORK_PHASES:
        found = [v for v in lint_sql(sql, phase=phase) if v.rule == rule_id]
        if phase is Phase.CONTRACT:
            assert found == []
        else:
            assert [v.severity for v in found] == [Severity.ERROR], phase
            assert found[0].phase == phase.value


LOCK = [
    ("create-index-not-concurrently", "CREATE INDEX i ON t (a)"),
    ("drop-index-not-concurrently", "DROP INDEX i"),
    ("reindex-not-concurrently", "REINDEX TABLE t"),
    ("constraint-not-valid", "ALTER TABLE t ADD CHECK (a > 0)"),
    ("unique-constraint-without-index", "ALTER TABLE t ADD PRIMARY KEY (id)"),
    ("add-column-volatile-default", "ALTER TABLE t ADD COLUMN r float DEFAULT random()"),
    ("add-column-serial", "ALTER TABLE t ADD COLUMN s serial"),
    ("add-column-identity", "ALTER TABLE t ADD COLUMN i int GENERATED ALWAYS AS IDENTITY"),
    ("add-column-generated-stored", "ALTER TABLE t ADD COLUMN g int GENERATED ALWAYS AS (a) STORED"),
    ("set-not-null-without-check", "ALTER TABLE t ALTER a SET NOT NULL"),
    ("vacuum-full", "VACUUM (FULL, ANALYZE) t"),
    ("cluster", "CLUSTER t"),
    ("lock-table", "LOCK t"),
    ("detach-partition-not-concurrently", "ALTER TABLE t DETACH PARTITION p"),
    ("unbatched-backfill", "DELETE FROM t"),
    ("change-column-type", "ALTER TABLE t ALTER a TYPE bigint"),
    ("alter-domain-add-constraint", "ALTER DOMAIN d ADD CHECK (VALUE > 0)"),
    ("concurrently-in-transaction", "BEGIN; DROP INDEX CONCURRENTLY i; COMMIT;"),
]


@pytest.mark.parametrize(("rule_id", "sql"), LOCK)
def test_lock_rules_are_errors_in_every_phase(rule_id: str, sql: str) -> None:
    assert get_rule(rule_id).category is Category.LOCK
    for phase in WORK_PHASES:
        found = [v for v in lint_sql(sql, phase=phase) if v.rule == rule_id]
        assert [v.severity for v in found] == [Severity.ERROR], phase


def test_hygiene_rules_are_opt_in_warnings() -> None:
    sql = "CREATE TABLE t (id serial, at timestamp, name varchar(10), code char(2))"
    assert lint_sql(sql) == []
    found = lint_sql(sql, config={"enable": ["hygiene"]})
    assert {v.rule for v in found} == {
        "prefer-bigint", "prefer-identity", "prefer-timestamptz", "prefer-text",
        "prefer-text-over-char",
    }
    assert {v.severity for v in found} == {Severity.WARNING}


def test_constant_default_is_safe_from_pg11_but_not_before() -> None:
    sql = "ALTER TABLE t ADD COLUMN flag boolean NOT NULL DEFAULT false"
    assert lint_sql(sql, pg_version=11) == []
    assert [v.rule for v in lint_sql(sql, pg_version=10)] == ["add-column-volatile-default"]
    assert "Before PostgreSQL 11" in lint_sql(sql, pg_version=10)[0].message


def test_set_not_null_needs_a_validated_check_and_pg12() -> None:
    recipe = (
        "ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE t VALIDATE CONSTRAINT t_a_nn;\n"
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL;\n"
    )
    assert lint_sql(recipe, phase=Phase.CONTRACT) == []
    assert [v.rule for v in lint_sql(recipe, phase=Phase.CONTRACT, pg_version=11)] == [
        "set-not-null-without-check"
    ]
    not_validated = recipe.replace("ALTER TABLE t VALIDATE CONSTRAINT t_a_nn;\n", "")
    found = lint_sql(not_validated, phase=Phase.CONTRACT)
    assert [(v.rule, v.line) for v in found] == [("set-not-null-without-check", 2)]
    other_column = recipe.replace("ALTER COLUMN a SET", "ALTER COLUMN b SET")
    assert [v.rule for v in lint_sql(other_column, phase=Phase.CONTRACT)] == [
        "set-not-null-without-check"
    ]


def test_reindex_and_detach_concurrently_depend_on_version() -> None:
    assert lint_sql("REINDEX (CONCURRENTLY) INDEX i") == []
    assert "PostgreSQL before 12" in lint_sql("REINDEX INDEX i", pg_version=11)[0].message
    assert lint_sql("ALTER TABLE t DETACH PARTITION p CONCURRENTLY") == []
    assert "before 14" in lint_sql("ALTER TABLE t DETACH PARTITION p", pg_version=13)[0].message


def test_enum_add_value_in_transaction_only_before_pg12() -> None:
    sql = "BEGIN; ALTER TYPE mood ADD VALUE 'meh'; COMMIT;"
    assert [v.rule for v in lint_sql(sql, pg_version=11)] == ["enum-add-value-in-transaction"]
    assert lint_sql(sql, pg_version=12) == []
    assert lint_sql("ALTER TYPE mood ADD VALUE 'meh'", pg_version=11) == []


def test_new_table_in_same_text_is_exempt_from_lock_rules() -> None:
    sql = """
        CREATE TABLE refunds (id bigint PRIMARY KEY, order_id bigint, note text);
        CREATE INDEX refunds_order_idx ON refunds (order_id);
        ALTER TABLE refunds ADD CONSTRAINT refunds_order_fk FOREIGN KEY (order_id) REFERENCES orders (id);
        ALTER TABLE refunds ADD COLUMN amount numeric NOT NULL;
        ALTER TABLE refunds ALTER COLUMN note SET NOT NULL;
        UPDATE refunds SET note = '';
    """
    assert lint_sql(sql) == []
    # the same statements against an existing table are all reported
    existing = sql.replace("CREATE TABLE refunds (id bigint PRIMARY KEY, order_id bigint, note text);", "")
    assert {v.rule for v in lint_sql(existing)} == {
        "create-index-not-concurrently", "constraint-not-valid",
        "add-column-not-null-without-default", "set-not-null", "set-not-null-without-check",
        "unbatched-backfill",
    }


def test_type_change_known_widening_is_allowed() -> None:
    assert lint_sql("ALTER TABLE t ADD COLUMN a varchar(10); ALTER TABLE t ALTER a TYPE varchar(20)") == []
    assert lint_sql("ALTER TABLE t ADD COLUMN a numeric(10,2); ALTER TABLE t ALTER a TYPE numeric(12,2)") == []
    narrowing = "ALTER TABLE t ADD COLUMN a varchar(20); ALTER TABLE t ALTER a TYPE varchar(10)"
    assert [v.rule for v in lint_sql(narrowing)] == ["change-column-type"]
    rewrite = "ALTER TABLE t ADD COLUMN a varchar(20); ALTER TABLE t ALTER a TYPE text USING upper(a)"
    assert [v.rule for v in lint_sql(rewrite)] == ["change-column-type"]


def test_message_says_what_why_and_safe_way() -> None:
    (v,) = lint_sql("ALTER TABLE users DROP COLUMN email", path="m.sql")
    assert v.message.startswith("DROP COLUMN users.email outside contract.")
    assert "running" in v.message and "Safe way:" in v.message
    assert (v.path, v.line, v.statement) == ("m.sql", 1, "ALTER TABLE users DROP COLUMN email")
    assert v.as_dict()["severity"] == "error"


def test_syntax_error_names_its_line_and_the_rest_is_still_linted() -> None:
    sql = "SELECT 1;\n\nALTER TABEL users ADD COLUMN x int;\nDROP TABLE users;\n"
    found = lint_sql(sql)
    assert [(v.rule, v.line) for v in found] == [("syntax-error", 3), ("drop-table", 4)]
    assert 'near "TABEL"' in found[0].message


def test_lines_count_multibyte_text_and_comments() -> None:
    sql = "-- é ü 日本\nSELECT 'ééé';\n/* a\n comment */\n\n  DROP TABLE t;"
    assert [(v.rule, v.line) for v in lint_sql(sql)] == [("drop-table", 6)]
