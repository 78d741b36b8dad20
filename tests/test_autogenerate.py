"""Autogenerate: models vs the live database, mapped to phased operations, applied, no diff left."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from tests.alembic_project import sqlalchemy_url
from tests.helpers import settings_for
from zdmigrate import autogenerate, engine
from zdmigrate.errors import BadInput, MigrationFileError
from zdmigrate.lint import lint_migration
from zdmigrate.migration import load_migrations
from zdmigrate.phases import Phase

BASE = """
CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, email text, age int NOT NULL,
                    nickname text);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);
CREATE TABLE legacy (id int PRIMARY KEY);
"""


def models() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "users", md,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("full_name", sa.Text, nullable=False),          # renamed from name
        sa.Column("email", sa.Text, index=True),                  # new index
        sa.Column("age", sa.Integer, nullable=True),              # NOT NULL dropped
        sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'active'")),
        sa.Column("bio", sa.Text),                                # new nullable column
    )                                                             # nickname removed
    sa.Table(
        "orders", md,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", name="orders_user_fk")),
        sa.UniqueConstraint("user_id", name="orders_user_key"),
    )
    sa.Table(
        "items", md,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("order_id", sa.BigInteger, sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("note", sa.Text),
    )                                                             # legacy removed
    return md


def diff(db_url: str, md: sa.MetaData) -> list[object]:
    engine_ = sa.create_engine(sqlalchemy_url(db_url))
    try:
        with engine_.connect() as conn:
            return autogenerate.compare(conn, md)
    finally:
        engine_.dispose()


def test_every_difference_becomes_its_phased_operation(db_url: str, dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(BASE)
    generated = autogenerate.operations_for(diff(db_url, models()), {"users.name": "full_name"})
    ops_lines = [line for line in generated.lines if not line.startswith("#")]
    assert ops_lines == [
        "ops.CreateTable('items', sa.Column('id', sa.BigInteger(), nullable=False), "
        "sa.Column('order_id', sa.BigInteger(), nullable=False), "
        "sa.Column('note', sa.Text(), nullable=True), "
        "constraints=[sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ), "
        "sa.PrimaryKeyConstraint('id')]),",
        "ops.RenameColumn('users', 'name', 'full_name'),",
        "ops.AddColumn('users', 'status', 'TEXT', nullable=False, default=\"'active'\"),",
        "ops.AddColumn('users', 'bio', 'TEXT'),",
        "ops.DropNotNull('users', 'age'),",
        "ops.CreateIndex('ix_users_email', 'users', ['email']),",
        "ops.AddUnique('orders', ['user_id'], name='orders_user_key'),",
        "ops.AddForeignKey('orders', ['user_id'], 'users', ['id'], name='orders_user_fk'),",
        "ops.DropColumn('users', 'nickname'),",
        "ops.DropTable('legacy'),",
    ]


def test_generated_migration_runs_end_to_end_and_leaves_no_difference(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(BASE)
        conn.execute("INSERT INTO users VALUES (1, 'ann', 'a@x.org', 30, 'annie')")
    md = models()
    generated = autogenerate.operations_for(diff(db_url, md), {"users.name": "full_name"})
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_models.py").write_text(autogenerate.migration_source(
        title="models", revision="0001_models", down_revision=None, generated=generated,
        app="shop"))
    settings = settings_for(db_url, folder)
    [migration] = load_migrations(folder)
    assert [v for v in lint_migration(migration, [Phase.EXPAND]) if v.is_error] == []
    engine.advance(settings, to="contract", override_reason="test: no app version runs")
    assert diff(db_url, md) == []
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT full_name, status, age FROM users").fetchall() == [
            ("ann", "active", 30)]


def test_a_column_dropped_and_one_added_is_never_a_silent_rename(db_url: str, dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(BASE)
    generated = autogenerate.operations_for(diff(db_url, models()))
    text = "\n".join(generated.lines)
    assert "ops.DropColumn('users', 'name')" in text
    assert "--rename users.name=full_name" in text  # the TODO says how to make it a rename


def test_not_null_without_default_needs_a_fill_the_file_refuses_to_load_without(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    md = sa.MetaData()
    sa.Table("t", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("code", sa.Text, nullable=False))
    generated = autogenerate.operations_for(diff(db_url, md))
    assert generated.todos == ["t.code: the fill of SetNotNull"]
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "0001_code.py").write_text(autogenerate.migration_source(
        title="code", revision="0001_code", down_revision=None, generated=generated, app=None))
    with pytest.raises(MigrationFileError, match="FILL"):
        load_migrations(folder)


def test_rename_that_the_models_do_not_show_is_bad_input(db_url: str, dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(BASE)
    with pytest.raises(BadInput, match=r"do not drop users\.email"):
        autogenerate.operations_for(diff(db_url, models()), {"users.email": "mail"})


def test_load_metadata_errors_are_one_line_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "brokenmodels.py").write_text("import nosuchpackage_zdm\n")
    (tmp_path / "goodmodels.py").write_text(
        "import sqlalchemy as sa\nmetadata = sa.MetaData()\nnot_metadata = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BadInput, match=r"cannot import 'brokenmodels'.*nosuchpackage_zdm"):
        autogenerate.load_metadata("brokenmodels:metadata")
    with pytest.raises(BadInput, match="not 'module:attribute'"):
        autogenerate.load_metadata("goodmodels")
    with pytest.raises(BadInput, match="not a SQLAlchemy MetaData"):
        autogenerate.load_metadata("goodmodels:not_metadata")
    assert isinstance(autogenerate.load_metadata("goodmodels:metadata"), sa.MetaData)


CHANGES = """
CREATE TABLE t (id int PRIMARY KEY, code varchar(100), qty int, flag boolean DEFAULT false,
                note text, label text);
CREATE INDEX ix_t_note ON t (note);
INSERT INTO t VALUES (1, 'a', 5, true, 'n', 'l'), (2, 'b', NULL, NULL, NULL, NULL);
"""


def changed_models() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "t", md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(200)),                         # widened in place
        sa.Column("qty", sa.BigInteger),                           # a real type change
        sa.Column("flag", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("note", sa.Text),                                # its index is gone
        sa.Column("label", sa.Text, server_default=sa.text("'none'::text")),  # new default
    )
    return md


def test_type_nullable_default_and_index_changes_run_and_leave_no_difference(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(CHANGES)
    md = changed_models()
    generated = autogenerate.operations_for(diff(db_url, md))
    ops_lines = [line for line in generated.lines if not line.startswith("#")]
    assert ops_lines == [
        "ops.WidenColumnType('t', 'code', 'VARCHAR(200)'),",
        "ops.ChangeColumnType('t', 'qty', 'BIGINT', up='\"qty\"::BIGINT'),",
        "ops.SetNotNull('t', 'flag', fill='false'),",
        "ops.SetDefault('t', 'label', \"'none'::text\"),",
        "ops.DropIndex('ix_t_note'),",
    ]
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_changes.py").write_text(autogenerate.migration_source(
        title="changes", revision="0001_changes", down_revision=None, generated=generated,
        app="shop"))
    engine.advance(settings_for(db_url, folder), to="contract",
                   override_reason="test: no app version runs")
    assert diff(db_url, md) == []
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT id, code, qty, flag FROM t ORDER BY id").fetchall() == [
            (1, "a", 5, True), (2, "b", None, False)]


def test_widening_is_told_from_a_rewrite() -> None:
    widens = autogenerate.widens_in_place
    assert widens("VARCHAR(100)", "VARCHAR(200)")
    assert widens("VARCHAR(100)", "TEXT") and widens("TEXT", "VARCHAR")
    assert widens("NUMERIC(10, 2)", "NUMERIC(12, 2)") and widens("NUMERIC(10, 2)", "NUMERIC")
    assert not widens("VARCHAR(200)", "VARCHAR(100)")
    assert not widens("TEXT", "VARCHAR(10)")
    assert not widens("NUMERIC(10, 2)", "NUMERIC(12, 3)")
    assert not widens("INTEGER", "BIGINT")
