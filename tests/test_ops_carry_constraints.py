"""Column copies (RenameColumn, ChangeColumnType) keep everything that hangs on the column.

Each test runs the real engine on real PostgreSQL, with an old-version client
(old column names) and a new-version client (new names) writing after every
phase. After contract the carried constraints must still reject bad rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.helpers import run_contract_steps_as_done
from tests.ops_lifecycle import Conn, Lifecycle, lifecycle, one, rollbacks, setup, snapshot
from zdmigrate.errors import BadInput, OperationInvalid
from zdmigrate.phases import Phase

KEYS = itertools.count(1000)


def constraints(conn: Conn, table: str) -> dict[str, tuple[str, str, bool]]:
    rows = conn.execute(
        "SELECT conname, contype::text, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype <> 'n'", [table]).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def leftovers(conn: Conn) -> list[str]:
    rows = conn.execute(
        "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'zdm\\_%%' "
        "UNION ALL SELECT proname FROM pg_proc WHERE proname LIKE 'zdm\\_%%' "
        "UNION ALL SELECT conname FROM pg_constraint WHERE conname LIKE '%%zdm%%' "
        "UNION ALL SELECT relname FROM pg_class WHERE relname LIKE '%%zdm%%'"
    ).fetchall()
    return [r[0] for r in rows]


# -- 1: CHECK, FK, comment, statistics, collation carried over ------------------------

CARRY_SETUP = """
CREATE TABLE parent (id int PRIMARY KEY);
INSERT INTO parent SELECT generate_series(1, 5);
CREATE TABLE child (
    id int PRIMARY KEY,
    name text COLLATE "C" NOT NULL CONSTRAINT child_name_len CHECK (length(name) >= 3),
    parent_id int CONSTRAINT child_parent_fk REFERENCES parent (id) ON DELETE CASCADE,
    nick text,
    CONSTRAINT child_nick_differs CHECK (nick IS DISTINCT FROM name));
COMMENT ON COLUMN child.name IS 'display name';
COMMENT ON CONSTRAINT child_name_len ON child IS 'three letters or more';
ALTER TABLE child ALTER COLUMN name SET STATISTICS 500;
CREATE INDEX child_name_lower ON child (lower(name) text_pattern_ops) WITH (fillfactor = 70)
    WHERE nick IS NULL;
COMMENT ON INDEX child_name_lower IS 'prefix search';
CREATE INDEX child_parent_idx ON child (parent_id);
INSERT INTO child SELECT g, 'seed' || g, g, NULL FROM generate_series(1, 5) g;
"""
CARRY_OPS = """[
    ops.RenameColumn("child", "name", "full_name"),
    ops.ChangeColumnType("child", "parent_id", "bigint", new_name="parent",
                         up="parent_id", down="parent::int"),
]"""


def carry_clients(conn: Conn, phase: Phase) -> None:
    k = next(KEYS)
    if phase < Phase.CONTRACT:  # old version
        conn.execute("INSERT INTO child (id, name, parent_id) VALUES (%s, %s, 1)", [k, f"old{k}"])
        assert one(conn, "SELECT full_name FROM child WHERE id = %s", [k]) == f"old{k}"
        assert one(conn, "SELECT parent FROM child WHERE id = %s", [k]) == 1
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO child (id, name) VALUES (%s, 'ab')", [-k])
    conn.execute("INSERT INTO child (id, full_name, parent) VALUES (%s, %s, 2)", [k + 50000, f"new{k}"])
    if phase < Phase.CONTRACT:
        assert one(conn, "SELECT name FROM child WHERE id = %s", [k + 50000]) == f"new{k}"
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO child (id, full_name) VALUES (%s, 'ab')", [-k - 50000])
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("INSERT INTO child (id, full_name, parent) VALUES (%s, 'abc', 999)", [-k])
    if phase is Phase.CONTRACT:
        cons = constraints(conn, "child")
        assert cons == {
            "child_pkey": ("p", "PRIMARY KEY (id)", True),
            "child_name_len": ("c", "CHECK ((length(full_name) >= 3))", True),
            "child_nick_differs": ("c", "CHECK ((nick IS DISTINCT FROM full_name))", True),
            "child_parent_fk": (
                "f", "FOREIGN KEY (parent) REFERENCES parent(id) ON DELETE CASCADE", True),
        }
        assert one(conn, "SELECT col_description('child'::regclass, "
                   "(SELECT attnum FROM pg_attribute WHERE attrelid = 'child'::regclass "
                   "AND attname = 'full_name'))") == "display name"
        assert one(conn, "SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint "
                   "WHERE conname = 'child_name_len'") == "three letters or more"
        assert one(conn, "SELECT pg_get_indexdef('child_name_lower'::regclass)") == (
            "CREATE INDEX child_name_lower ON public.child USING btree "
            "(lower(full_name) text_pattern_ops) WITH (fillfactor='70') WHERE (nick IS NULL)")
        assert one(conn, "SELECT obj_description('child_name_lower'::regclass, 'pg_class')") == (
            "prefix search")
        assert one(conn, "SELECT pg_get_indexdef('child_parent_idx'::regclass)") == (
            "CREATE INDEX child_parent_idx ON public.child USING btree (parent)")
        assert one(conn, "SELECT attstattarget FROM pg_attribute WHERE attrelid = 'child'::regclass "
                   "AND attname = 'full_name'") == 500
        assert one(conn, "SELECT collname FROM pg_attribute a JOIN pg_collation c "
                   "ON c.oid = a.attcollation WHERE attrelid = 'child'::regclass "
                   "AND attname = 'full_name'") == "C"
        assert one(conn, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                   "WHERE attrelid = 'child'::regclass AND attname = 'parent'") == "bigint"
        # ON DELETE CASCADE was carried too
        conn.execute("DELETE FROM parent WHERE id = 2")
        assert one(conn, "SELECT count(*) FROM child WHERE parent = 2") == 0
        assert leftovers(conn) == []


@pytest.mark.pg(">=15")
def test_column_copy_refuses_a_foreign_key_with_an_on_delete_column_list(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    setup(dsn, "CREATE TABLE p (t int, id int, PRIMARY KEY (t, id));"
               "CREATE TABLE c (t int, p_id int, FOREIGN KEY (t, p_id) REFERENCES p "
               "ON DELETE SET NULL (p_id))")
    with pytest.raises(OperationInvalid) as info:
        Lifecycle(tmp_path / "m", db_url, '[ops.RenameColumn("c", "p_id", "parent")]').advance(
            Phase.EXPAND)
    assert "c_t_p_id_fkey sets only some columns ON DELETE" in "\n".join(info.value.problems)


@pytest.mark.parametrize(("setup_sql", "operation", "reason"), [
    ("CREATE TABLE t (code text PRIMARY KEY)", 'ops.RenameColumn("t", "code", "c2")',
     "primary key t_pkey"),
    ("CREATE EXTENSION IF NOT EXISTS btree_gist; "
     "CREATE TABLE t (id int PRIMARY KEY, r int4range, "
     "CONSTRAINT t_no_overlap EXCLUDE USING gist (r WITH &&))",
     'ops.RenameColumn("t", "r", "r2")', "exclusion constraint t_no_overlap"),
    ("CREATE TABLE t (id int PRIMARY KEY, a int, b int GENERATED ALWAYS AS (a * 2) STORED)",
     'ops.RenameColumn("t", "a", "a2")', "generated column b"),
    ("CREATE TABLE t (id int PRIMARY KEY, a text); CREATE INDEX t_a_like ON t (a text_pattern_ops)",
     'ops.ChangeColumnType("t", "a", "int", new_name="a2", up="length(a)", down="a2::text")',
     "an index on the column cannot be rebuilt on a2"),
    ("CREATE TABLE t (id int PRIMARY KEY, a int GENERATED BY DEFAULT AS IDENTITY)",
     'ops.RenameColumn("t", "a", "a2")', "identity"),
    ("CREATE TABLE t (id int PRIMARY KEY, a text CHECK (a ~ '^x'))",
     'ops.ChangeColumnType("t", "a", "int", new_name="a2", up="length(a)", down="a2::text")',
     "t_a_check"),
    ("CREATE TABLE p (code text PRIMARY KEY); CREATE TABLE t (id int PRIMARY KEY, "
     "code text CONSTRAINT t_code_fkey REFERENCES p (code))",
     'ops.ChangeColumnType("t", "code", "int", new_name="n", up="length(code)", down="n::text")',
     "foreign key t_code_fkey: operator does not exist: integer = text"),
])
def test_column_copy_refuses_what_it_cannot_carry_before_expand(
    tmp_path: Path, db_url: str, dsn: str, setup_sql: str, operation: str, reason: str
) -> None:
    setup(dsn, setup_sql)
    before = snapshot(dsn)
    with pytest.raises(OperationInvalid) as info:
        Lifecycle(tmp_path / "m", db_url, f"[{operation}]").advance(Phase.EXPAND)
    assert info.value.exit_code == 2
    assert reason in "\n".join(info.value.problems)
    assert snapshot(dsn) == before


# -- 2: a column another table's foreign key references ------------------------------

INBOUND_SETUP = """
CREATE TABLE parent (id int PRIMARY KEY, code text NOT NULL CONSTRAINT parent_code_key UNIQUE);
CREATE TABLE child (id int PRIMARY KEY,
                    parent_code text CONSTRAINT child_parent_code_fkey REFERENCES parent (code));
INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 5) g;
INSERT INTO child SELECT g, 'p' || g FROM generate_series(1, 5) g;
"""
INBOUND_OPS = '[ops.RenameColumn("parent", "code", "parent_code")]'


def inbound_clients(conn: Conn, phase: Phase) -> None:
    k = next(KEYS)
    if phase < Phase.CONTRACT:
        conn.execute("INSERT INTO parent (id, code) VALUES (%s, %s)", [k, f"o{k}"])
        conn.execute("INSERT INTO child VALUES (%s, %s)", [k, f"o{k}"])
    conn.execute("INSERT INTO parent (id, parent_code) VALUES (%s, %s)", [-k, f"n{k}"])
    conn.execute("INSERT INTO child VALUES (%s, %s)", [-k, f"n{k}"])
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("INSERT INTO child VALUES (%s, 'nobody')", [k + 50000])
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO parent (id, parent_code) VALUES (%s, 'p1')", [k + 50000])
    if phase is Phase.CONTRACT:
        assert constraints(conn, "child")["child_parent_code_fkey"] == (
            "f", "FOREIGN KEY (parent_code) REFERENCES parent(parent_code)", True)
        assert constraints(conn, "parent")["parent_code_key"] == (
            "u", "UNIQUE (parent_code)", True)
        assert leftovers(conn) == []


# -- 1 and 2 through every phase, and back from every phase before contract ----------

COPIES = pytest.mark.parametrize(("setup_sql", "operations", "clients"), [
    pytest.param(CARRY_SETUP, CARRY_OPS, carry_clients,
                 id="carries-check-fk-comment-statistics-collation"),
    pytest.param(INBOUND_SETUP, INBOUND_OPS, inbound_clients,
                 id="rename-referenced-column-repoints-inbound-foreign-keys"),
])


@COPIES
def test_column_copy_lifecycle(
    tmp_path: Path, db_url: str, dsn: str, setup_sql: str, operations: str,
    clients: Callable[[Conn, Phase], None],
) -> None:
    setup(dsn, setup_sql)
    lifecycle(tmp_path, db_url, dsn, operations, clients)


@COPIES
def test_column_copy_rolls_back_from_every_phase(
    tmp_path: Path, db_url: str, dsn: str, setup_sql: str, operations: str,
    clients: Callable[[Conn, Phase], None],
) -> None:
    setup(dsn, setup_sql)
    rollbacks(tmp_path, db_url, dsn, operations, clients)


def test_contract_refuses_with_nothing_changed_when_a_view_uses_the_old_column(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    setup(dsn, "CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL);"
               "INSERT INTO t VALUES (1, 'a');")
    lc = Lifecycle(tmp_path / "migrations", db_url, '[ops.RenameColumn("t", "name", "title")]')
    lc.advance(Phase.SWITCH_READ)
    setup(dsn, "CREATE VIEW v AS SELECT id, name FROM t")
    before = snapshot(dsn)
    with pytest.raises(BadInput) as info:
        lc.advance(Phase.CONTRACT)
    assert info.value.exit_code == 2
    assert "view public.v" in str(info.value) + "\n".join(info.value.problems)
    assert snapshot(dsn) == before
    with psycopg.connect(dsn, autocommit=True) as conn:  # old version still writes
        conn.execute("INSERT INTO t (id, name) VALUES (2, 'b')")
        assert one(conn, "SELECT title FROM t WHERE id = 2") == "b"
    setup(dsn, "CREATE OR REPLACE VIEW v AS SELECT id, title AS name FROM t")
    lc.advance(Phase.CONTRACT)


# -- 7: a data problem is exit 2, with the rows counted and a sample -------------------


def test_validate_finding_violating_rows_is_a_data_problem_with_a_sample(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    setup(dsn, "CREATE TABLE users (id int PRIMARY KEY); INSERT INTO users VALUES (1);"
               "CREATE TABLE products (id int PRIMARY KEY, price int, user_id int);"
               "INSERT INTO products SELECT g, 10 - g, 1 FROM generate_series(1, 20) g;")
    lc = Lifecycle(tmp_path / "m", db_url,
                   '[ops.AddCheck("products", "products_price_positive", "price > 0")]')
    lc.advance(Phase.BACKFILL)
    with pytest.raises(BadInput) as info:
        lc.advance(Phase.SWITCH_READ)
    assert info.value.exit_code == 2
    text = str(info.value)
    assert "11 row(s) of public.products violate it" in text
    assert '"price": 0' in text or '"price": -1' in text
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert one(conn, "SELECT convalidated FROM pg_constraint "
                         "WHERE conname = 'products_price_positive'") is False


# -- 8: AddForeignKey checks for dangling rows before expand ---------------------------


def test_add_foreign_key_reports_dangling_rows_before_expand(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    setup(dsn, "CREATE TABLE users (id int PRIMARY KEY); INSERT INTO users VALUES (1);"
               "CREATE TABLE orders (id int PRIMARY KEY, user_id int);"
               "INSERT INTO orders VALUES (1, 1), (2, NULL), (3, 7), (4, 8);")
    before = snapshot(dsn)
    with pytest.raises(OperationInvalid) as info:
        Lifecycle(tmp_path / "m", db_url,
                  '[ops.AddForeignKey("orders", ["user_id"], "users", ["id"])]').advance(Phase.EXPAND)
    problems = "\n".join(info.value.problems)
    assert "table public.orders has rows whose (user_id) match no row of public.users" in problems
    assert "2 row(s), e.g. (7), (8)" in problems or "2 row(s), e.g. (8), (7)" in problems
    assert snapshot(dsn) == before


def test_add_foreign_key_missing_column_is_not_called_dangling(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    setup(dsn, "CREATE TABLE users (id int PRIMARY KEY); CREATE TABLE orders (id int PRIMARY KEY)")
    with pytest.raises(OperationInvalid) as info:
        Lifecycle(tmp_path / "m", db_url,
                  '[ops.AddForeignKey("orders", ["user_id"], "users", ["id"])]').advance(Phase.EXPAND)
    assert info.value.problems == [
        "add foreign key orders_user_id_fkey on public.orders: "
        "column 'user_id' does not exist in table public.orders"]


# -- 5: CreateTable keeps table and column comments ------------------------------------


def test_create_table_sets_table_and_column_comments(tmp_path: Path, db_url: str, dsn: str) -> None:
    lc = Lifecycle(tmp_path / "m", db_url, """[ops.CreateTable(
        "carts", sa.Column("id", sa.Integer, primary_key=True, comment="the cart's id"),
        sa.Column("note", sa.Text, comment="it's free text"), comment="shopping carts")]""")
    lc.advance(Phase.EXPAND)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert one(conn, "SELECT obj_description('carts'::regclass, 'pg_class')") == "shopping carts"
        notes = dict(conn.execute(
            "SELECT attname, col_description(attrelid, attnum) FROM pg_attribute "
            "WHERE attrelid = 'carts'::regclass AND attnum > 0").fetchall())
        assert notes == {"id": "the cart's id", "note": "it's free text"}
    lc.rollback(Phase.PENDING)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert one(conn, "SELECT to_regclass('carts')") is None


# -- 4: operations know their line; suppression comments work on ops.SQL ---------------

SQL_MIGRATION = '''"""ops.SQL with a suppression."""
from zdmigrate import ops

revision = "0001_sql"
down_revision = None

operations = [
    ops.AddColumn("users", "x", "text"),
    # zdmigrate: ignore[drop-column] nothing has read legacy since 2019
    ops.SQL(expand="ALTER TABLE users DROP COLUMN legacy"),
    ops.SQL(
        expand="ALTER TABLE users DROP COLUMN other",
    ),
]
'''


def test_operations_point_at_their_line_and_honour_suppressions(tmp_path: Path) -> None:
    from zdmigrate.lint import lint_migration
    from zdmigrate.migration import load_file

    path = tmp_path / "0001_sql.py"
    path.write_text(SQL_MIGRATION)
    migration = load_file(path)
    assert [op.source.line if op.source else None for op in migration.operations] == [8, 10, 11]
    found = [(v.rule, v.line) for v in lint_migration(migration) if v.rule == "drop-column"]
    assert found == [("drop-column", 11)]
    steps = migration.render(Phase.EXPAND)
    assert [(s.source.path, s.source.line) if s.source else None for s in steps] == [
        (str(path), 8), (str(path), 10), (str(path), 11)]


# -- 6: contract needs fleet proof when it removes what old versions rely on -----------


@pytest.mark.parametrize(("operation", "needs_proof"), [
    ('ops.AddCheck("t", "t_x_positive", "x > 0", fix={"x": "1"})', True),
    ('ops.AddCheck("t", "t_x_positive", "x > 0")', False),
    ('ops.AddColumn("t", "y", "int", nullable=False, default=0)', False),
    ('ops.AddColumn("t", "y", "int", nullable=False, up="x * 2")', True),
    ('ops.SetNotNull("t", "x", fill="0")', True),
])
def test_contract_needs_fleet_proof_exactly_when_old_versions_lose_something(
    tmp_path: Path, operation: str, needs_proof: bool
) -> None:
    from zdmigrate.fleet import destructive_contract_statements
    from zdmigrate.migration import load_file

    path = tmp_path / "0001_m.py"
    path.write_text(
        f'from zdmigrate import ops\nrevision = "0001_m"\ndown_revision = None\n'
        f"operations = [\n    # zdmigrate: ignore[drop-constraint,set-not-null] cannot hide it\n"
        f"    {operation},\n]\n")
    assert bool(destructive_contract_statements(load_file(path))) is needs_proof


def test_add_check_with_fix_contract_is_held_without_compat(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    from zdmigrate import engine
    from zdmigrate.errors import PhaseRefused

    setup(dsn, "CREATE TABLE t (id int PRIMARY KEY, x int)")
    lc = Lifecycle(tmp_path / "m", db_url,
                   '[ops.AddCheck("t", "t_x_positive", "x > 0", fix={"x": "1"})]')
    lc.advance(Phase.SWITCH_READ)
    with pytest.raises(PhaseRefused, match=r"not proven"):
        engine.advance(lc.settings, "0001_op_under_test", to=Phase.CONTRACT)
    with psycopg.connect(dsn, autocommit=True) as conn:  # the fix trigger still repairs old writes
        conn.execute("INSERT INTO t VALUES (1, -5)")
        assert one(conn, "SELECT x FROM t WHERE id = 1") == 1


# -- 3: an interrupted contract cannot be rolled back: refused, nothing recorded ------


def test_rollback_of_an_interrupted_contract_is_refused_and_records_nothing(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    from tests.ops_lifecycle import MIGRATION_ID
    from zdmigrate import engine
    from zdmigrate.errors import ZdmigrateError

    setup(dsn, "CREATE TABLE t (id int PRIMARY KEY, x int); INSERT INTO t VALUES (1, NULL)")
    lc = Lifecycle(tmp_path / "m", db_url,
                   '[ops.SetNotNull("t", "x", fill="0"), ops.SQL(contract="SELECT 1 / 0")]')
    lc.advance(Phase.SWITCH_READ)
    with pytest.raises(ZdmigrateError):
        lc.advance(Phase.CONTRACT)  # SetNotNull's contract ran, then the SQL failed
    before = snapshot(dsn)
    with pytest.raises(BadInput) as info:
        engine.rollback(lc.settings, MIGRATION_ID)
    assert info.value.exit_code == 2
    assert "contract" in str(info.value) and "phase advance" in str(info.value)
    assert snapshot(dsn) == before
    (status,) = engine.status(lc.settings)
    assert status.phase is Phase.SWITCH_READ
    assert [p["phase"] for p in status.partial] == ["contract"]


# -- crash safety: a contract killed between any two steps finishes on the rerun -------


@pytest.mark.parametrize("cut", ["drop-inbound", "drop-column", "finish-indexes",
                                 "half-of-finish-constraints"])
def test_contract_killed_between_steps_finishes_on_the_rerun(
    tmp_path: Path, db_url: str, dsn: str, cut: str
) -> None:
    from zdmigrate import db
    from zdmigrate.migration import load_migrations
    from zdmigrate.steps import GeneratedSQLStep

    setup(dsn, INBOUND_SETUP + """
        ALTER TABLE parent ADD CONSTRAINT parent_code_len CHECK (length(code) >= 2);""")
    lc = Lifecycle(tmp_path / "migrations", db_url, INBOUND_OPS)
    lc.advance(Phase.SWITCH_READ)
    (migration,) = load_migrations(lc.settings.migrations)
    steps = migration.render(Phase.CONTRACT)
    names = [s.description if isinstance(s, GeneratedSQLStep) else s.sql for s in steps]
    stop = {
        "drop-inbound": next(i for i, n in enumerate(names) if n and "re-pointed" in n) + 1,
        "drop-column": next(i for i, n in enumerate(names) if n and "DROP COLUMN" in n) + 1,
        "finish-indexes": next(i for i, n in enumerate(names) if n and "indexes" in n) + 1,
        "half-of-finish-constraints": len(steps) - 1,
    }[cut]
    with psycopg.connect(dsn, autocommit=True) as conn:
        run_contract_steps_as_done(conn, migration.id, steps[:stop])
        if cut == "half-of-finish-constraints":  # killed inside the last generated step
            last = steps[-1]
            assert isinstance(last, GeneratedSQLStep)
            conn.execute(db.generated_statements(conn, last)[0].sql.encode())
    lc.advance(Phase.CONTRACT)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert constraints(conn, "child")["child_parent_code_fkey"] == (
            "f", "FOREIGN KEY (parent_code) REFERENCES parent(parent_code)", True)
        assert constraints(conn, "parent") == {
            "parent_pkey": ("p", "PRIMARY KEY (id)", True),
            "parent_code_key": ("u", "UNIQUE (parent_code)", True),
            "parent_code_len": ("c", "CHECK ((length(parent_code) >= 2))", True),
        }
        assert leftovers(conn) == []


def test_contract_checks_every_operation_before_the_first_step_of_any(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    setup(dsn, "CREATE TABLE t (id int PRIMARY KEY, name text); CREATE TABLE legacy (id int)")
    lc = Lifecycle(tmp_path / "migrations", db_url,
                   '[ops.SQL(contract="DROP TABLE legacy"), ops.RenameColumn("t", "name", "title")]')
    lc.advance(Phase.SWITCH_READ)
    setup(dsn, "CREATE VIEW v AS SELECT name FROM t")
    before = snapshot(dsn)
    with pytest.raises(OperationInvalid) as info:
        lc.advance(Phase.CONTRACT)
    assert "view public.v uses it" in str(info.value)
    assert snapshot(dsn) == before  # the first operation's DROP TABLE did not run either


def test_unique_index_build_meeting_duplicates_is_a_data_problem_and_reruns_clean(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    setup(dsn, "CREATE TABLE users (id int PRIMARY KEY, email text);"
               "INSERT INTO users VALUES (1, 'a'), (2, 'a'), (3, 'b')")
    lc = Lifecycle(tmp_path / "m", db_url,
                   '[ops.CreateIndex("users_email_uq", "users", ["email"], unique=True)]')
    with pytest.raises(BadInput) as info:
        lc.advance(Phase.EXPAND)
    assert info.value.exit_code == 2
    assert "Key (email)=(a) is duplicated" in str(info.value)
    assert "INVALID index" in str(info.value)
    setup(dsn, "UPDATE users SET email = 'c' WHERE id = 2")
    lc.advance(Phase.EXPAND)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert one(conn, "SELECT indisvalid FROM pg_index "
                         "WHERE indexrelid = 'users_email_uq'::regclass") is True


def test_view_mode_rename_is_not_refused_for_what_a_copy_could_not_carry(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    setup(dsn, "CREATE TABLE t (code text PRIMARY KEY); INSERT INTO t VALUES ('a')")
    lc = Lifecycle(tmp_path / "m", db_url, '[ops.RenameColumn("t", "code", "c2", mode="view")]')
    lc.advance(Phase.EXPAND)  # the column never changes, so its primary key stays as it is
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert one(conn, "SELECT count(*) FROM zdm_0001_op_under_test.t WHERE c2 = 'a'") == 1
