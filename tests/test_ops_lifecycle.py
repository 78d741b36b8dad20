"""Lifecycle tests of the operations against real PostgreSQL, through the real engine.

In the shape of pgroll's op_common_test.go: after every phase an old-version
client (old shape only, until contract) and a new-version client (new shape
only) write and read, and each sees the other's writes; rolling back from every
phase before contract returns the schema exactly to where it was; contract
leaves exactly the new shape. Any failed statement from either client fails.
"""

from __future__ import annotations

import itertools
import random
import threading
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tests.ops_lifecycle import (
    Conn,
    Lifecycle,
    lifecycle,
    one,
    rollbacks,
    setup,
    snapshot,
)
from zdmigrate.errors import OperationInvalid
from zdmigrate.phases import Phase

KEYS = itertools.count(100)  # row keys unique across phases and repeated runs


def columns(conn: Conn, table: str, schema: str = "public") -> dict[str, tuple[str, bool, str | None]]:
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
        "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = format('%%I.%%I', %s::text, %s::text)::regclass "
        "AND a.attnum > 0 AND NOT a.attisdropped",
        [schema, table],
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def zdm_leftovers(conn: Conn) -> list[str]:
    """Triggers, functions and constraints zdmigrate made that are still there."""
    rows = conn.execute(
        "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'zdm\\_%%' "
        "UNION ALL SELECT proname FROM pg_proc WHERE proname LIKE 'zdm\\_%%' "
        "UNION ALL SELECT conname FROM pg_constraint WHERE conname LIKE 'zdm\\_%%'"
    ).fetchall()
    return [r[0] for r in rows]


# -- RenameColumn: quoted schema, table and columns, composite key, NOT NULL + default --

RENAME_SETUP = """
CREATE SCHEMA "Shop Data";
CREATE TABLE "Shop Data"."Order Items" (
    order_id int, line int, "Name" text NOT NULL DEFAULT 'unnamed',
    PRIMARY KEY (order_id, line));
INSERT INTO "Shop Data"."Order Items" SELECT g, 0, 'seed-' || g FROM generate_series(1, 5) g;
"""
RENAME_OPS = '[ops.RenameColumn("Shop Data.Order Items", "Name", "select")]'
T = '"Shop Data"."Order Items"'


def rename_clients(conn: Conn, phase: Phase) -> None:
    k = next(KEYS)
    if phase < Phase.CONTRACT:
        # old version: knows only "Name"
        conn.execute(f'INSERT INTO {T} (order_id, line, "Name") VALUES (%s, 1, %s)', [k, f"old-{k}"])
        conn.execute(f'UPDATE {T} SET "Name" = %s WHERE order_id = 1 AND line = 0', [f"old-upd-{k}"])
        assert one(conn, f'SELECT "select" FROM {T} WHERE order_id = %s AND line = 1', [k]) == f"old-{k}"
        assert one(conn, f'SELECT "select" FROM {T} WHERE order_id = 1 AND line = 0') == f"old-upd-{k}"
    # new version: knows only "select" (the trigger lets it write from expand on)
    conn.execute(f'INSERT INTO {T} (order_id, line, "select") VALUES (%s, 2, %s)', [k, f"new-{k}"])
    conn.execute(f'UPDATE {T} SET "select" = %s WHERE order_id = 2 AND line = 0', [f"new-upd-{k}"])
    if phase < Phase.CONTRACT:
        assert one(conn, f'SELECT "Name" FROM {T} WHERE order_id = %s AND line = 2', [k]) == f"new-{k}"
        assert one(conn, f'SELECT "Name" FROM {T} WHERE order_id = 2 AND line = 0') == f"new-upd-{k}"
    if Phase.BACKFILL <= phase < Phase.CONTRACT:
        assert one(conn, f'SELECT count(*) FROM {T} WHERE "Name" IS DISTINCT FROM "select"') == 0
    if phase is Phase.CONTRACT:
        assert columns(conn, "Order Items", "Shop Data") == {
            "order_id": ("integer", True, None), "line": ("integer", True, None),
            "select": ("text", True, "'unnamed'::text"),
        }
        conn.execute(f"INSERT INTO {T} (order_id, line) VALUES (999, 9)")
        assert one(conn, f'SELECT "select" FROM {T} WHERE order_id = 999') == "unnamed"
        assert zdm_leftovers(conn) == []


def test_rename_column_lifecycle(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, RENAME_SETUP)
    lifecycle(tmp_path, db_url, dsn, RENAME_OPS, rename_clients)


def test_rename_column_rollback_from_every_phase(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, RENAME_SETUP)
    rollbacks(tmp_path, db_url, dsn, RENAME_OPS, rename_clients)


def test_rename_column_requirements_list_every_problem(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    setup(dsn, "CREATE TABLE users (id int PRIMARY KEY, name text, full_name text)")
    lc = Lifecycle(tmp_path / "m", db_url,
                   '[ops.RenameColumn("users", "name", "full_name"), '
                   'ops.RenameColumn("people", "x", "y")]')
    before = snapshot(dsn)
    with pytest.raises(OperationInvalid) as info:
        lc.advance(Phase.EXPAND)
    assert info.value.exit_code == 2
    problems = "\n".join(info.value.problems)
    assert "column 'full_name' already exists in table public.users" in problems
    assert "table public.people does not exist" in problems
    assert snapshot(dsn) == before


# -- ChangeColumnType ---------------------------------------------------------------

RETYPE_SETUP = """
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     total_cents bigint NOT NULL DEFAULT 0);
INSERT INTO orders (total_cents) SELECT g * 101 FROM generate_series(1, 5) g;
"""
RETYPE_OPS = """[ops.ChangeColumnType("orders", "total_cents", sa.Numeric(12, 2), new_name="total",
                  up="total_cents / 100.0", down="round(total * 100)::bigint")]"""


def retype_clients(conn: Conn, phase: Phase) -> None:
    if phase < Phase.CONTRACT:
        oid = one(conn, "INSERT INTO orders (total_cents) VALUES (1234) RETURNING id")
        assert str(one(conn, "SELECT total FROM orders WHERE id = %s", [oid])) == "12.34"
        cents = next(KEYS)  # a value the row never held: a real change
        conn.execute("UPDATE orders SET total_cents = %s WHERE id = 1", [cents])
        assert one(conn, "SELECT total FROM orders WHERE id = 1") == Decimal(cents) / 100
    nid = one(conn, "INSERT INTO orders (total) VALUES (5.5) RETURNING id")
    cents = next(KEYS)
    conn.execute("UPDATE orders SET total = %s WHERE id = 2", [Decimal(cents) / 100])
    if phase < Phase.CONTRACT:
        assert one(conn, "SELECT total_cents FROM orders WHERE id = %s", [nid]) == 550
        assert one(conn, "SELECT total_cents FROM orders WHERE id = 2") == cents
    if Phase.BACKFILL <= phase < Phase.CONTRACT:
        assert one(conn, "SELECT count(*) FROM orders WHERE total IS DISTINCT FROM total_cents / 100.0") == 0
    if phase is Phase.CONTRACT:
        cols = columns(conn, "orders")
        assert set(cols) == {"id", "total"}
        assert cols["total"] == ("numeric(12,2)", True, "(0)::numeric(12,2)")
        assert zdm_leftovers(conn) == []


def test_change_column_type_lifecycle(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, RETYPE_SETUP)
    lifecycle(tmp_path, db_url, dsn, RETYPE_OPS, retype_clients)


def test_change_column_type_rollback_from_every_phase(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, RETYPE_SETUP)
    rollbacks(tmp_path, db_url, dsn, RETYPE_OPS, retype_clients)


# -- concurrent writers of both versions while the backfill runs ----------------------

def _writers(dsn: str, stop: threading.Event, errors: list[BaseException], statements: list[str],
             rows: int) -> list[threading.Thread]:
    def loop(statement: str, seed: int) -> None:
        rng = random.Random(seed)
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                while not stop.is_set():
                    k = rng.randint(1, rows)
                    conn.execute(statement, {"k": k, "v": rng.randint(1, 10**6)})
        except BaseException as exc:  # recorded: the test fails on any writer error
            errors.append(exc)

    return [threading.Thread(target=loop, args=(s, i)) for i, s in enumerate(statements)]


@pytest.mark.parametrize("operation", ["rename", "retype"])
def test_backfill_with_concurrent_old_and_new_writers(
    tmp_path: Path, db_url: str, dsn: str, operation: str
) -> None:
    rows = 4000
    if operation == "rename":
        setup(dsn, "CREATE TABLE t (a int, b int, v text NOT NULL, PRIMARY KEY (a, b));"
                   f"INSERT INTO t SELECT g, g % 7, 'v' || g FROM generate_series(1, {rows}) g")
        ops = '[ops.RenameColumn("t", "v", "w")]'
        statements = [
            "UPDATE t SET v = 'old' || %(v)s WHERE a = %(k)s",
            "UPDATE t SET w = 'new' || %(v)s WHERE a = %(k)s",
            "INSERT INTO t (a, b, v) VALUES (%(k)s + 100000 + %(v)s, 0, 'i') ON CONFLICT DO NOTHING",
            "INSERT INTO t (a, b, w) VALUES (%(k)s + 2000000 + %(v)s, 1, 'j') ON CONFLICT DO NOTHING",
        ]
        disagree = "SELECT count(*) FROM t WHERE v IS DISTINCT FROM w"
    else:
        setup(dsn, "CREATE TABLE t (id int PRIMARY KEY, cents bigint);"
                   f"INSERT INTO t SELECT g, g FROM generate_series(1, {rows}) g")
        ops = ('[ops.ChangeColumnType("t", "cents", "numeric", new_name="amount", '
               'up="cents / 100.0", down="round(amount * 100)::bigint")]')
        statements = [
            "UPDATE t SET cents = %(v)s WHERE id = %(k)s",
            "UPDATE t SET amount = %(v)s / 100.0 WHERE id = %(k)s",
        ]
        disagree = "SELECT count(*) FROM t WHERE amount IS DISTINCT FROM cents / 100.0"
    lc = Lifecycle(tmp_path / "m", db_url, ops)
    lc.advance(Phase.DUAL_WRITE)
    stop, errors = threading.Event(), []
    threads = _writers(dsn, stop, errors, statements, rows)
    for t in threads:
        t.start()
    try:
        lc.advance(Phase.BACKFILL)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert one(conn, disagree) == 0
    lc.advance(Phase.SWITCH_READ)  # the engine's verification agrees


# -- AddColumn -----------------------------------------------------------------------

USERS = """
CREATE TABLE users (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, email text NOT NULL,
                    nickname text NOT NULL, phone text NOT NULL, status text DEFAULT 'draft');
INSERT INTO users (email, nickname, phone) SELECT 'U' || g || '@X.org', 'n' || g, '0' || g
FROM generate_series(1, 5) g;
"""
ADD_COLUMN_OPS = ('[ops.AddColumn("users", "email_lower", "text", nullable=False, '
                  'default="\'\'", up="lower(email)")]')


def add_column_clients(conn: Conn, phase: Phase) -> None:
    k = next(KEYS)
    if phase < Phase.CONTRACT:  # old version: does not know email_lower
        uid = one(conn, "INSERT INTO users (email, nickname, phone) VALUES (%s, 'o', '1') "
                        "RETURNING id", [f"Old{k}@X.org"])
        assert one(conn, "SELECT email_lower FROM users WHERE id = %s", [uid]) == f"old{k}@x.org"
        conn.execute("UPDATE users SET email = %s WHERE id = 1", [f"Changed{k}@X.org"])
        assert one(conn, "SELECT email_lower FROM users WHERE id = 1") == f"changed{k}@x.org"
    if phase >= Phase.SWITCH_READ:  # new version: writes and reads email_lower itself
        uid = one(conn, "INSERT INTO users (email, email_lower, nickname, phone) "
                        "VALUES ('A@b', 'chosen', 'n', '1') RETURNING id")
        conn.execute("UPDATE users SET nickname = 'other' WHERE id = %s", [uid])
        assert one(conn, "SELECT email_lower FROM users WHERE id = %s", [uid]) == "chosen"
        assert one(conn, "SELECT count(*) FROM users WHERE email_lower IS NULL") == 0
    if phase is Phase.CONTRACT:
        assert columns(conn, "users")["email_lower"] == ("text", True, "''::text")
        assert zdm_leftovers(conn) == []


def test_add_column_lifecycle(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, USERS)
    lifecycle(tmp_path, db_url, dsn, ADD_COLUMN_OPS, add_column_clients)


def test_add_column_rollback_from_every_phase(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, USERS)
    rollbacks(tmp_path, db_url, dsn, ADD_COLUMN_OPS, add_column_clients)


# -- DropColumn, with and without `down` ----------------------------------------------

DROP_OPS = '[ops.DropColumn("users", "nickname"), ops.DropColumn("users", "phone", down="\'n/a\'")]'


def drop_column_clients(conn: Conn, phase: Phase) -> None:
    k = next(KEYS)
    if phase < Phase.CONTRACT:  # old version: writes and reads both columns
        uid = one(conn, "INSERT INTO users (email, nickname, phone) VALUES (%s, 'nick', '555') "
                        "RETURNING id", [f"o{k}"])
        assert one(conn, "SELECT nickname || phone FROM users WHERE id = %s", [uid]) == "nick555"
    if phase >= Phase.SWITCH_READ:  # new version: knows neither column
        uid = one(conn, "INSERT INTO users (email) VALUES (%s) RETURNING id", [f"n{k}"])
        if phase < Phase.CONTRACT:  # old readers see the `down` value; nickname is NULL
            assert one(conn, "SELECT phone FROM users WHERE id = %s", [uid]) == "n/a"
    if phase is Phase.CONTRACT:
        assert set(columns(conn, "users")) == {"id", "email", "status"}
        assert zdm_leftovers(conn) == []


def test_drop_column_lifecycle(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, USERS)
    lifecycle(tmp_path, db_url, dsn, DROP_OPS, drop_column_clients)


def test_drop_column_rollback_restores_not_null(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, USERS)

    def old_only(conn: Conn, phase: Phase) -> None:
        conn.execute("INSERT INTO users (email, nickname, phone) VALUES ('x', 'y', 'z')")
        assert columns(conn, "users")["nickname"][1] is False  # optional for new versions

    rollbacks(tmp_path, db_url, dsn, DROP_OPS, old_only)


# -- SetNotNull, DropNotNull, SetDefault, DropDefault ---------------------------------

PRODUCTS = """
CREATE TABLE products (id int PRIMARY KEY, currency text, price int NOT NULL DEFAULT 1,
                       code text NOT NULL, label text DEFAULT 'none');
INSERT INTO products SELECT g, CASE WHEN g % 2 = 0 THEN 'USD' END, g - 3, 'c' || g
FROM generate_series(1, 6) g;
"""
COLUMN_OPS = """[
    ops.SetNotNull("products", "currency", fill="'EUR'"),
    ops.DropNotNull("products", "code"),
    ops.SetDefault("products", "price", 10),
    ops.SetDefault("products", "label", "'fresh'"),
    ops.DropDefault("products", "label"),
]"""


def column_clients(conn: Conn, phase: Phase) -> None:
    k = next(KEYS)
    if phase < Phase.CONTRACT:  # old version: may leave currency NULL, always writes code
        conn.execute("INSERT INTO products (id, currency, code) VALUES (%s, NULL, 'c')", [k])
        assert one(conn, "SELECT currency FROM products WHERE id = %s", [k]) == "EUR"
        assert one(conn, "SELECT price FROM products WHERE id = %s", [k]) == 10
        assert one(conn, "SELECT label FROM products WHERE id = %s", [k]) == "fresh"
    if phase >= Phase.SWITCH_READ:  # new version: may leave code NULL
        conn.execute("INSERT INTO products (id, currency, label) VALUES (%s, 'GBP', 'l')", [-k])
        assert one(conn, "SELECT code FROM products WHERE id = %s", [-k]) is None
    if phase >= Phase.BACKFILL:
        assert one(conn, "SELECT count(*) FROM products WHERE currency IS NULL") == 0
    if phase is Phase.CONTRACT:
        cols = columns(conn, "products")
        assert cols["currency"] == ("text", True, None)
        assert cols["code"] == ("text", False, None)
        assert cols["price"] == ("integer", True, "10")
        assert cols["label"] == ("text", False, None)
        assert zdm_leftovers(conn) == []


def test_column_constraint_ops_lifecycle(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, PRODUCTS)
    lifecycle(tmp_path, db_url, dsn, COLUMN_OPS, column_clients)


def test_column_constraint_ops_rollback_from_every_phase(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    setup(dsn, PRODUCTS)

    def old_only(conn: Conn, phase: Phase) -> None:
        conn.execute("INSERT INTO products (id, code) VALUES (%s, 'c')", [next(KEYS)])

    rollbacks(tmp_path, db_url, dsn, COLUMN_OPS, old_only)


# -- tables: CreateTable, RenameTable, DropTable (archived), in a non-public schema ---

TABLES = """
CREATE SCHEMA shop;
CREATE TABLE shop.carts (id int PRIMARY KEY, "user" text NOT NULL);
CREATE TABLE shop.wishlists (id int PRIMARY KEY);
INSERT INTO shop.carts VALUES (1, 'a'), (2, 'b');
"""
TABLE_OPS = """[
    ops.CreateTable("shop.coupons", sa.Column("code", sa.Text, primary_key=True),
                    sa.Column("Percent Off", sa.Integer, nullable=False, index=True)),
    ops.RenameTable("shop.carts", "baskets"),
    ops.DropTable("shop.wishlists", archive="archive"),
]"""


def table_clients(conn: Conn, phase: Phase) -> None:
    k = next(KEYS)
    if phase < Phase.CONTRACT:  # old version: carts and wishlists
        conn.execute("INSERT INTO shop.carts VALUES (%s, 'old')", [k])
        conn.execute("INSERT INTO shop.wishlists VALUES (%s)", [k])
        assert one(conn, "SELECT \"user\" FROM shop.baskets WHERE id = %s", [k]) == "old"
    # new version: baskets (a view until contract) and coupons
    conn.execute("INSERT INTO shop.baskets VALUES (%s, 'new')", [-k])
    conn.execute("UPDATE shop.baskets SET \"user\" = 'new2' WHERE id = 1")
    conn.execute("INSERT INTO shop.coupons VALUES (%s, 5)", [f"c{k}"])
    if phase < Phase.CONTRACT:
        assert one(conn, "SELECT \"user\" FROM shop.carts WHERE id = %s", [-k]) == "new"
        assert one(conn, "SELECT \"user\" FROM shop.carts WHERE id = 1") == "new2"
    if phase is Phase.CONTRACT:
        kinds = dict(conn.execute(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = "
            "c.relnamespace WHERE n.nspname = 'shop' AND c.relkind IN ('r', 'v')").fetchall())
        assert kinds == {"baskets": "r", "coupons": "r"}
        assert one(conn, "SELECT count(*) FROM archive.wishlists") > 0


def test_table_ops_lifecycle(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, TABLES)
    lifecycle(tmp_path, db_url, dsn, TABLE_OPS, table_clients)


def test_table_ops_rollback_from_every_phase(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, TABLES)

    def old_only(conn: Conn, phase: Phase) -> None:
        conn.execute("INSERT INTO shop.carts VALUES (%s, 'old')", [next(KEYS)])

    rollbacks(tmp_path, db_url, dsn, TABLE_OPS, old_only)


# -- indexes and constraints -----------------------------------------------------------

CONSTRAINTS = """
CREATE TABLE users (id int PRIMARY KEY, email text);
CREATE TABLE events (tenant int, seq int, user_id int, payload text);
CREATE TABLE products (id int PRIMARY KEY, price int);
INSERT INTO products SELECT g, g - 3 FROM generate_series(1, 5) g;
CREATE INDEX events_payload_idx ON events (payload);
INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 5) g;
INSERT INTO events SELECT 1, g, g, 'p' FROM generate_series(1, 5) g;
"""
CONSTRAINT_OPS = """[
    ops.CreateIndex("events_user_idx", "events", ["user_id"], where="user_id IS NOT NULL",
                    include=["payload"]),
    ops.DropIndex("events_payload_idx"),
    ops.AddForeignKey("events", ["user_id"], "users", ["id"], on_delete="CASCADE"),
    ops.AddCheck("products", "products_price_positive", "price > 0", fix={"price": "1"}),
    ops.AddUnique("users", ["email"]),
    ops.AddPrimaryKey("events", ["tenant", "seq"]),
]"""


def constraint_clients(conn: Conn, phase: Phase) -> None:
    k = next(KEYS)
    conn.execute("INSERT INTO users VALUES (%s, %s)", [k, f"e{k}"])
    if phase < Phase.CONTRACT:  # old version: may write a non-positive price
        conn.execute("INSERT INTO events VALUES (1, %s, %s, 'old')", [k, k])
        conn.execute("INSERT INTO products VALUES (%s, -5)", [k])
        assert one(conn, "SELECT price FROM products WHERE id = %s", [k]) == 1
    conn.execute("INSERT INTO events VALUES (2, %s, %s, 'new')", [k, k])
    conn.execute("INSERT INTO products VALUES (%s, 7)", [-k])
    if phase >= Phase.BACKFILL:
        assert one(conn, "SELECT count(*) FROM products WHERE price <= 0") == 0
    validated = dict(conn.execute(
        "SELECT conname, convalidated FROM pg_constraint WHERE contype IN ('f', 'c') "
        "AND conrelid IN ('events'::regclass, 'products'::regclass)").fetchall())
    assert validated == {"events_user_id_fkey": phase >= Phase.SWITCH_READ,
                         "products_price_positive": phase >= Phase.SWITCH_READ}
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO users VALUES (%s, 'u1')", [-k])
    if phase is Phase.CONTRACT:
        indexes = dict(conn.execute(
            "SELECT indexrelid::regclass::text, indisvalid FROM pg_index "
            "WHERE indrelid IN ('events'::regclass, 'users'::regclass)").fetchall())
        assert indexes == {"events_user_idx": True, "events_pkey": True, "users_pkey": True,
                           "users_email_key": True}
        kinds = dict(conn.execute(
            "SELECT conname, contype FROM pg_constraint WHERE conrelid IN "
            "('events'::regclass, 'users'::regclass)").fetchall())
        assert kinds["events_pkey"] == "p" and kinds["users_email_key"] == "u"
        assert zdm_leftovers(conn) == []


def test_constraint_ops_lifecycle(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, CONSTRAINTS)
    lifecycle(tmp_path, db_url, dsn, CONSTRAINT_OPS, constraint_clients)


def test_constraint_ops_rollback_from_every_phase(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, CONSTRAINTS)
    rollbacks(tmp_path, db_url, dsn, CONSTRAINT_OPS, constraint_clients)


def test_add_unique_reports_duplicates_before_expand(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, "CREATE TABLE users (id int PRIMARY KEY, email text);"
               "INSERT INTO users VALUES (1, 'a'), (2, 'a')")
    with pytest.raises(OperationInvalid, match="duplicate values in \\(email\\)"):
        Lifecycle(tmp_path / "m", db_url, '[ops.AddUnique("users", "email")]').advance(Phase.EXPAND)


# -- enums and raw SQL -----------------------------------------------------------------

ENUM_OPS = """[
    ops.CreateEnum("shop.order_status", ["new", "paid", "shipped"]),
    ops.AddEnumValue("shop.payment", "refunded", before="settled"),
    ops.SQL(expand="CREATE TABLE shop.notes (id int PRIMARY KEY, s shop.order_status)",
            rollback="DROP TABLE shop.notes", contract="ALTER TABLE shop.notes DROP COLUMN s"),
]"""


def enum_clients(conn: Conn, phase: Phase) -> None:
    k = next(KEYS)
    conn.execute("INSERT INTO shop.orders VALUES (%s, 'settled')", [k])
    conn.execute("INSERT INTO shop.orders VALUES (%s, 'refunded')", [-k])
    if phase < Phase.CONTRACT:
        conn.execute("INSERT INTO shop.notes VALUES (%s, 'shipped')", [k])
    labels = one(conn, "SELECT enum_range(NULL::shop.order_status)::text[]")
    assert labels == ["new", "paid", "shipped"]


def test_enum_and_sql_ops_lifecycle(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, "CREATE SCHEMA shop; CREATE TYPE shop.payment AS ENUM ('open', 'settled');"
               "CREATE TABLE shop.orders (id int PRIMARY KEY, p shop.payment)")
    lifecycle(tmp_path, db_url, dsn, ENUM_OPS, enum_clients)


def test_enum_rollback_keeps_added_values(tmp_path: Path, db_url: str, dsn: str) -> None:
    """PostgreSQL cannot drop an enum value: everything else rolls back exactly."""
    setup(dsn, "CREATE SCHEMA shop; CREATE TYPE shop.payment AS ENUM ('open', 'settled');"
               "CREATE TABLE shop.orders (id int PRIMARY KEY, p shop.payment)")
    before = snapshot(dsn)
    lc = Lifecycle(tmp_path / "m", db_url, ENUM_OPS)
    lc.advance(Phase.SWITCH_READ)
    lc.rollback(Phase.PENDING)
    after = snapshot(dsn)
    assert after["enums"] == [("payment", ["open", "refunded", "settled"])]
    assert {k: v for k, v in after.items() if k != "enums"} == {
        k: v for k, v in before.items() if k != "enums"}
