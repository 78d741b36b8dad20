"""Suppression comments, and linting steps and migrations: file:line of the author's call."""

from __future__ import annotations

import textwrap
from pathlib import Path

from zdmigrate.lint import lint_migration, lint_sql, lint_steps
from zdmigrate.migration import load_file, load_migrations
from zdmigrate.phases import Phase
from zdmigrate.steps import BackfillStep, Source, SQLStep

REPO = Path(__file__).resolve().parents[1]


def test_sql_suppression_silences_the_next_statement_only() -> None:
    sql = (
        "-- zdmigrate: ignore[drop-column] nothing reads legacy since 2019\n"
        "ALTER TABLE users DROP COLUMN legacy;\n"
        "ALTER TABLE users DROP COLUMN other;\n"
    )
    assert [(v.rule, v.line) for v in lint_sql(sql)] == [("drop-column", 3)]


def test_suppression_lists_several_rules() -> None:
    sql = "-- zdmigrate: ignore[drop-index, drop-index-not-concurrently] tiny table\nDROP INDEX i;"
    assert lint_sql(sql) == []


def test_suppression_needs_a_reason_and_a_known_rule() -> None:
    no_reason = "-- zdmigrate: ignore[drop-column]\nALTER TABLE users DROP COLUMN legacy;"
    assert sorted((v.rule, v.line) for v in lint_sql(no_reason)) == [
        ("drop-column", 2), ("invalid-suppression", 1),
    ]
    unknown = "-- zdmigrate: ignore[drop-colum] typo\nALTER TABLE users DROP COLUMN legacy;"
    found = lint_sql(unknown)
    assert {v.rule for v in found} == {"drop-column", "invalid-suppression"}
    assert "drop-colum" in next(v.message for v in found if v.rule == "invalid-suppression")


def test_unused_suppression_is_a_warning() -> None:
    sql = "-- zdmigrate: ignore[drop-column] legacy\nALTER TABLE users ADD COLUMN x text;"
    (v,) = lint_sql(sql)
    assert (v.rule, v.severity.value, v.line) == ("unused-suppression", "warning", 1)


def test_steps_point_at_their_source_and_skip_backfill_steps() -> None:
    steps = [
        SQLStep("ALTER TABLE users ADD COLUMN x text", source=Source("m.py", 10)),
        BackfillStep("users", {"x": "lower(name)"}, source=Source("m.py", 12)),
        SQLStep("CREATE INDEX users_x ON users (x);\nDROP TABLE legacy", source=Source("m.py", 14)),
        SQLStep("UPDATE users SET x = %s WHERE id = %(id)s", params={"id": 1},
                source=Source("m.py", 16)),
    ]
    found = lint_steps(steps, Phase.EXPAND)
    assert [(v.rule, v.path, v.line) for v in found] == [
        ("create-index-not-concurrently", "m.py", 14),
        ("drop-table", "m.py", 14),
    ]
    assert lint_steps(steps[2:3], Phase.CONTRACT)[0].rule == "create-index-not-concurrently"


def test_created_tables_carry_between_calls() -> None:
    created: set[str] = set()
    lint_steps([SQLStep("CREATE TABLE refunds (id bigint)")], Phase.EXPAND, created_tables=created)
    assert created == {"refunds"}
    later = [SQLStep("CREATE INDEX refunds_id ON refunds (id)")]
    assert lint_steps(later, Phase.EXPAND, created_tables=created) == []
    assert lint_steps(later, Phase.EXPAND) != []


def test_statements_in_one_step_share_the_step_transaction() -> None:
    # zdmigrate wraps an ordinary step in a transaction: COMMIT inside it is wrong
    (v,) = lint_steps([SQLStep("ALTER TABLE t ADD COLUMN a int; COMMIT")], Phase.EXPAND)
    assert v.rule == "transaction-nesting"
    # pre-12 ADD VALUE fails inside the step's transaction, not as an autocommit step
    add_value = "ALTER TYPE mood ADD VALUE 'meh'"
    assert [v.rule for v in lint_steps([SQLStep(add_value)], Phase.EXPAND, pg_version=11)] == [
        "enum-add-value-in-transaction"
    ]
    assert lint_steps([SQLStep(add_value, autocommit=True)], Phase.EXPAND, pg_version=11) == []


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body).lstrip())
    return path


def test_migration_phases_share_memory_and_report_call_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "0001_nn.py", '''
        revision = "0001_nn"
        down_revision = None


        def expand(ctx):
            ctx.execute("ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID")
            ctx.execute("ALTER TABLE users DROP COLUMN legacy")


        def switch_read(ctx):
            ctx.execute("ALTER TABLE users VALIDATE CONSTRAINT users_email_nn")


        def contract(ctx):
            ctx.execute("ALTER TABLE users ALTER COLUMN email SET NOT NULL")
            ctx.execute("ALTER TABLE users DROP COLUMN legacy")
    ''')
    migration = load_file(path)
    found = lint_migration(migration)
    assert [(v.rule, v.line, v.phase) for v in found] == [("drop-column", 7, "expand")]
    assert found[0].path == str(path.resolve())
    # contract alone still knows switch-read validated the check
    assert lint_migration(migration, [Phase.CONTRACT]) == []


def test_python_suppression_comment(tmp_path: Path) -> None:
    path = _write(tmp_path, "0001_s.py", '''
        revision = "0001_s"
        down_revision = None


        def expand(ctx):
            # zdmigrate: ignore[drop-column] legacy was never read by any release
            ctx.execute("ALTER TABLE users DROP COLUMN legacy")
            ctx.execute("ALTER TABLE users DROP COLUMN other")  # zdmigrate: ignore[drop-column] unused too
            # zdmigrate: ignore[drop-table] stale
            ctx.execute("ALTER TABLE users ADD COLUMN note text")
    ''')
    found = lint_migration(load_file(path))
    assert [(v.rule, v.line) for v in found] == [("unused-suppression", 9)]


def test_plain_alembic_revision_is_expand_and_points_at_op_calls(tmp_path: Path) -> None:
    _write(tmp_path, "0001_a.py", '''
        from alembic import op

        revision = "0001_a"
        down_revision = None


        def upgrade():
            op.drop_column("users", "legacy")
            op.create_index("users_email_idx", "users", ["email"])


        def downgrade():
            pass
    ''')
    (migration,) = load_migrations(tmp_path)
    found = lint_migration(migration)
    assert [(v.rule, v.line, v.phase) for v in found] == [
        ("drop-column", 8, "expand"), ("create-index-not-concurrently", 9, "expand"),
    ]


def test_migrations_example_is_clean() -> None:
    migrations = load_migrations(REPO / "migrations_example")
    assert len(migrations) >= 2
    for migration in migrations:
        assert lint_migration(migration) == [], migration.id


def test_a_table_is_new_only_in_the_phase_that_created_it(tmp_path: Path) -> None:
    path = _write(tmp_path, "0001_t.py", '''
        revision = "0001_t"
        down_revision = None


        def expand(ctx):
            ctx.execute("CREATE TABLE refunds (id bigint PRIMARY KEY, order_id bigint)")
            ctx.execute("CREATE INDEX refunds_order_idx ON refunds (order_id)")


        def backfill(ctx):
            ctx.execute("CREATE INDEX refunds_id_order_idx ON refunds (id, order_id)")
    ''')
    found = lint_migration(load_file(path))
    assert [(v.rule, v.line, v.phase) for v in found] == [
        ("create-index-not-concurrently", 11, "backfill")
    ]
