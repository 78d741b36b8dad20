"""Lifecycle tests of the operations that cover pgroll's remaining kinds, under two app versions.

While each phase is entered, an old-version and a new-version writer loop in
threads (the old one stops before contract, as the fleet check demands; the new
one starts once expand is done); after each phase both write and read once
more and the schema is checked. Any failed statement of either fails the test.
Rolling back from every phase before contract restores the schema exactly,
comments and replica identity included.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.ops_lifecycle import BEFORE_CONTRACT, Conn, Lifecycle, one, setup, snapshot
from tests.test_ops_lifecycle import columns, zdm_leftovers
from zdmigrate.errors import OperationInvalid
from zdmigrate.phases import WORK_PHASES, Phase

KEYS = itertools.count(1000)


class Writers:
    """Threads that run `statements` in a loop until stopped; each statement must succeed."""

    def __init__(self, dsn: str, statements: list[str]) -> None:
        self.stop_event = threading.Event()
        self.errors: list[BaseException] = []
        self.writes = 0
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._loop, args=(dsn, s, i))
                        for i, s in enumerate(statements)]

    def _loop(self, dsn: str, statement: str, seed: int) -> None:
        rng = random.Random(seed)
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                while not self.stop_event.is_set():
                    conn.execute(statement, {"k": next(KEYS), "v": rng.randint(1, 10**6)})
                    with self._lock:
                        self.writes += 1
        except BaseException as exc:  # recorded: the test fails on any writer error
            self.errors.append(exc)

    def __enter__(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join()


def lifecycle_under_writers(
    tmp_path: Path, db_url: str, dsn: str, operations: str,
    old: list[str], new: list[str], on_phase: Callable[[Conn, Phase], None],
) -> Lifecycle:
    """Advance through every phase with both versions writing while each phase runs."""
    lc = Lifecycle(tmp_path / "migrations", db_url, operations)
    for phase in WORK_PHASES:
        statements = [*(old if phase < Phase.CONTRACT else []),
                      *(new if phase > Phase.EXPAND else [])]
        with Writers(dsn, statements) as writers:
            lc.advance(phase)
        assert writers.errors == [], f"a writer failed while {phase.value} ran: {writers.errors[0]!r}"
        assert writers.writes > 0 or not statements
        with psycopg.connect(dsn, autocommit=True) as conn:
            on_phase(conn, phase)
    return lc


def extras(dsn: str) -> dict[str, Any]:
    """What `snapshot` leaves out and these operations change: comments, replica identity."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {
            "comments": conn.execute(
                "SELECT c.relname, d.objsubid, d.description FROM pg_description d "
                "JOIN pg_class c ON c.oid = d.objoid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' ORDER BY 1, 2").fetchall(),
            "replica": conn.execute(
                "SELECT relname, relreplident FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND relkind = 'r' "
                "ORDER BY 1").fetchall(),
        }


def rollbacks(
    tmp_path: Path, db_url: str, dsn: str, operations: str,
    old: list[str], on_phase: Callable[[Conn, Phase], None] | None = None,
) -> None:
    """From every phase before contract, with the old version writing, back to pending exactly."""
    before, before_extras = snapshot(dsn), extras(dsn)
    lc = Lifecycle(tmp_path / "migrations", db_url, operations)
    for last in BEFORE_CONTRACT:
        for phase in BEFORE_CONTRACT[: BEFORE_CONTRACT.index(last) + 1]:
            with Writers(dsn, old) as writers:
                lc.advance(phase)
            assert writers.errors == []
            if on_phase is not None:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    on_phase(conn, phase)
        with Writers(dsn, old) as writers:
            lc.rollback(Phase.PENDING)
        assert writers.errors == []
        assert snapshot(dsn) == before, f"rollback from {last} left the schema changed"
        assert extras(dsn) == before_extras, f"rollback from {last} left comments or identity"


def constraint_names(conn: Conn, table: str) -> dict[str, str]:
    return dict(conn.execute(
        "SELECT conname, contype FROM pg_constraint WHERE conrelid = %s::regclass "
        "AND contype <> 'n'", [table]).fetchall())


# -- DropConstraint (check, foreign key, multi-column unique), RenameConstraint ---------

POSTS = """
CREATE TABLE authors (id int PRIMARY KEY);
INSERT INTO authors SELECT g FROM generate_series(1, 3) g;
CREATE TABLE posts (
    id int PRIMARY KEY,
    title text CONSTRAINT posts_title_length CHECK (length(title) > 3),
    author_id int CONSTRAINT posts_author_fkey REFERENCES authors (id),
    slug text CONSTRAINT posts_slug_key UNIQUE,
    tenant int, seq int, CONSTRAINT posts_tenant_seq_key UNIQUE (tenant, seq));
INSERT INTO posts SELECT g, 'title ' || g, 1 + g % 3, 's' || g, 1, g FROM generate_series(1, 5) g;
"""
POSTS_OPS = """[
    ops.DropConstraint("posts", "posts_title_length"),
    ops.DropConstraint("posts", "posts_author_fkey"),
    ops.DropConstraint("posts", "posts_tenant_seq_key"),
    ops.RenameConstraint("posts", "posts_slug_key", "posts_slug_unique"),
]"""
# the old version relies on the constraint by name; the new one by column
POSTS_OLD = ["INSERT INTO posts VALUES (%(k)s, 'old title', 1, 'o' || %(k)s, 2, %(k)s) "
             "ON CONFLICT ON CONSTRAINT posts_slug_key DO NOTHING"]
POSTS_NEW = ["INSERT INTO posts VALUES (%(k)s, 'new title', 2, 'n' || %(k)s, 3, %(k)s) "
             "ON CONFLICT (slug) DO NOTHING"]


def posts_clients(conn: Conn, phase: Phase) -> None:
    k = next(KEYS)
    if phase < Phase.CONTRACT:  # every constraint still binds every writer
        conn.execute("INSERT INTO posts VALUES (%s, 'old title', 1, 's1', 9, %s) "
                     "ON CONFLICT ON CONSTRAINT posts_slug_key DO NOTHING", [k, k])
        assert one(conn, "SELECT count(*) FROM posts WHERE id = %s", [k]) == 0
        for bad in ("INSERT INTO posts (id, title) VALUES (%s, 'ab')",
                    "INSERT INTO posts (id, author_id) VALUES (%s, 99)",
                    "INSERT INTO posts (id, tenant, seq) VALUES (%s, 1, 1)"):
            with pytest.raises(psycopg.errors.IntegrityError):
                conn.execute(bad, [k])
        assert constraint_names(conn, "posts") == {
            "posts_pkey": "p", "posts_title_length": "c", "posts_author_fkey": "f",
            "posts_slug_key": "u", "posts_tenant_seq_key": "u"}
    else:  # the new version may write what the dropped constraints forbade
        conn.execute("INSERT INTO posts VALUES (%s, 'ab', 99, NULL, 1, 1)", [k])
        conn.execute("INSERT INTO posts VALUES (%s, 'ab', 98, 'x' || %s, 1, 1) "
                     "ON CONFLICT ON CONSTRAINT posts_slug_unique DO NOTHING", [-k, k])
        assert one(conn, "SELECT count(*) FROM posts WHERE tenant = 1 AND seq = 1") >= 3
        assert constraint_names(conn, "posts") == {"posts_pkey": "p", "posts_slug_unique": "u"}
        assert one(conn, "SELECT count(*) FROM pg_class WHERE relname = 'posts_slug_unique' "
                         "AND relkind = 'i'") == 1
        assert zdm_leftovers(conn) == []


def test_drop_and_rename_constraint_lifecycle(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, POSTS)
    lifecycle_under_writers(tmp_path, db_url, dsn, POSTS_OPS, POSTS_OLD, POSTS_NEW, posts_clients)


def test_drop_and_rename_constraint_rollback(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, POSTS)
    rollbacks(tmp_path, db_url, dsn, POSTS_OPS, POSTS_OLD, posts_clients)


def test_constraint_ops_check_names_before_expand(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, POSTS + "CREATE TABLE posts_title_idx (id int);")
    lc = Lifecycle(tmp_path / "m", db_url, """[
        ops.DropConstraint("posts", "no_such_constraint"),
        ops.RenameConstraint("posts", "posts_slug_key", "posts_title_length"),
        ops.RenameConstraint("posts", "posts_tenant_seq_key", "posts_title_idx"),
    ]""")
    before = snapshot(dsn)
    with pytest.raises(OperationInvalid) as info:
        lc.advance(Phase.EXPAND)
    assert info.value.exit_code == 2
    problems = "\n".join(info.value.problems)
    assert "constraint 'no_such_constraint' does not exist on table public.posts" in problems
    assert "constraint 'posts_title_length' already exists on table public.posts" in problems
    assert "renames its index, and the name 'posts_title_idx' is taken" in problems
    assert snapshot(dsn) == before


# -- SetComment, AddColumn(comment=), SetReplicaIdentity, WidenColumnType, DropNotNull(down) --

PEOPLE = """
CREATE TABLE people (id int PRIMARY KEY, name varchar(20) NOT NULL, bio varchar(50),
                     balance numeric(8,2), phone text NOT NULL, ip cidr);
COMMENT ON COLUMN people.name IS 'old comment';
ALTER TABLE people ADD CONSTRAINT people_name_filled CHECK (length(name) > 0);
ALTER TABLE people ADD CONSTRAINT people_bio_short CHECK (length(bio) < 1000) NOT VALID;
CREATE INDEX people_name_idx ON people (name);
INSERT INTO people SELECT g, 'p' || g, 'bio', g * 1.5, '0' || g, '10.0.0.0/8'
FROM generate_series(1, 5) g;
"""
PEOPLE_OPS = """[
    ops.SetComment("people", "Everyone who has an account"),
    ops.SetComment("people", "Display name", column="name"),
    ops.AddColumn("people", "nick", "text", comment="What friends call them"),
    ops.SetReplicaIdentity("people", "full"),
    ops.WidenColumnType("people", "name", "varchar(100)"),
    ops.WidenColumnType("people", "bio", "text"),
    ops.WidenColumnType("people", "balance", sa.Numeric(12, 2)),
    ops.WidenColumnType("people", "ip", "inet"),
    ops.DropNotNull("people", "phone", down="'unknown'"),
]"""
PEOPLE_OLD = ["INSERT INTO people (id, name, bio, balance, phone, ip) "
              "VALUES (%(k)s, 'old', 'short', 123456.78, '555', '10.1.0.0/16')",
              "UPDATE people SET name = 'o' || %(v)s WHERE id = 1"]
PEOPLE_NEW = ["INSERT INTO people (id, name, bio, balance, phone, ip) VALUES "
              "(%(k)s, repeat('n', 80), repeat('b', 500), 1234567890.12, NULL, '10.2.3.4')",
              "UPDATE people SET phone = NULL WHERE id = 2"]


def people_clients(conn: Conn, phase: Phase) -> None:
    k = next(KEYS)
    if phase < Phase.CONTRACT:  # old readers never see a NULL phone
        assert one(conn, "SELECT count(*) FROM people WHERE phone IS NULL") == 0
        conn.execute("INSERT INTO people (id, name, phone) VALUES (%s, 'x', NULL)", [k])
        assert one(conn, "SELECT phone FROM people WHERE id = %s", [k]) == "unknown"
    else:
        conn.execute("INSERT INTO people (id, name, phone) VALUES (%s, 'x', NULL)", [k])
        assert one(conn, "SELECT phone FROM people WHERE id = %s", [k]) is None
        assert zdm_leftovers(conn) == []
    cols = columns(conn, "people")
    assert cols["name"] == ("character varying(100)", True, None)
    assert cols["bio"][0] == "text" and cols["balance"][0] == "numeric(12,2)"
    assert cols["ip"][0] == "inet"
    assert cols["phone"][1] is (phase < Phase.CONTRACT)
    assert one(conn, "SELECT relreplident FROM pg_class WHERE oid = 'people'::regclass") == "f"
    # the checks on widened columns are back, as valid as they were
    assert dict(conn.execute("SELECT conname, convalidated FROM pg_constraint "
                             "WHERE conrelid = 'people'::regclass AND contype = 'c'").fetchall()) == {
        "people_name_filled": True, "people_bio_short": False}
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO people (id, name, phone) VALUES (%s, '', 'p')", [-k])
    comments = dict(conn.execute(
        "SELECT objsubid, description FROM pg_description WHERE objoid = 'people'::regclass"
    ).fetchall())
    assert comments == {0: "Everyone who has an account", 2: "Display name",
                        7: "What friends call them"}


def test_metadata_and_in_place_type_ops_lifecycle(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, PEOPLE)
    with psycopg.connect(dsn, autocommit=True) as conn:
        files = conn.execute("SELECT pg_relation_filenode('people'), "
                             "pg_relation_filenode('people_name_idx')").fetchone()
    lifecycle_under_writers(tmp_path, db_url, dsn, PEOPLE_OPS, PEOPLE_OLD, PEOPLE_NEW,
                            people_clients)
    with psycopg.connect(dsn, autocommit=True) as conn:  # no rewrite, no index rebuild
        assert conn.execute("SELECT pg_relation_filenode('people'), "
                            "pg_relation_filenode('people_name_idx')").fetchone() == files


def test_metadata_and_in_place_type_ops_rollback(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, PEOPLE)
    rollbacks(tmp_path, db_url, dsn, PEOPLE_OPS, PEOPLE_OLD)


def test_replica_identity_index_rollback_restores_the_index(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    setup(dsn, "CREATE TABLE t (id int PRIMARY KEY, code text NOT NULL);"
               "CREATE UNIQUE INDEX t_code_key ON t (code); CREATE UNIQUE INDEX t_code2 ON t (code);"
               "ALTER TABLE t REPLICA IDENTITY USING INDEX t_code2")
    before = extras(dsn)
    lc = Lifecycle(tmp_path / "m", db_url, '[ops.SetReplicaIdentity("t", index="t_code_key")]')
    lc.advance(Phase.EXPAND)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert one(conn, "SELECT indexrelid::regclass::text FROM pg_index "
                         "WHERE indrelid = 't'::regclass AND indisreplident") == "t_code_key"
    lc.rollback(Phase.PENDING)
    assert extras(dsn) == before
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert one(conn, "SELECT indexrelid::regclass::text FROM pg_index "
                         "WHERE indrelid = 't'::regclass AND indisreplident") == "t_code2"


def test_widen_refuses_a_narrowing_before_expand(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, "CREATE TABLE t (id int PRIMARY KEY, name varchar(50), n numeric(8,2));"
               "CREATE TABLE u (id int PRIMARY KEY, c varchar(5));"
               "CREATE VIEW u_view AS SELECT c FROM u")
    lc = Lifecycle(tmp_path / "m", db_url, """[
        ops.WidenColumnType("u", "c", "varchar(10)"),
        ops.WidenColumnType("t", "name", "varchar(10)"),
        ops.WidenColumnType("t", "n", "numeric(12,3)"),
        ops.SetReplicaIdentity("t", index="t_missing"),
        ops.AddColumn("u", "d", "int", comment="fine"),
    ]""")
    before = snapshot(dsn)
    with pytest.raises(OperationInvalid) as info:
        lc.advance(Phase.EXPAND)
    problems = "\n".join(info.value.problems)
    assert "column 'name' of table public.t does not widen to varchar(10)" in problems
    assert "column 'n' of table public.t does not widen to numeric(12,3)" in problems
    assert "index 't_missing' is not a valid, unique" in problems
    assert "column 'c' of table public.u is used by a view" in problems
    assert len(info.value.problems) == 4
    assert snapshot(dsn) == before


# -- CreateIndex: operator class, storage parameters, order, collation, NULLS NOT DISTINCT --

INDEXED = """
CREATE TABLE items (id int PRIMARY KEY, sku text, tags text[], made timestamptz, code text,
                    doc tsvector);
INSERT INTO items SELECT g, 'sku' || g, ARRAY['a'], now(), NULL FROM generate_series(1, 5) g;
"""
INDEX_OPS = """[
    ops.CreateIndex("items_sku_pattern_idx", "items", ["sku", "made"],
                    opclass={"sku": "text_pattern_ops"}, order={"made": "DESC NULLS LAST"},
                    collate={"sku": "C"}, with_={"fillfactor": 70}),
    ops.CreateIndex("items_tags_idx", "items", "tags", method="gin",
                    with_={"fastupdate": False}),
    ops.CreateIndex("items_code_key", "items", "code", unique=True, nulls_not_distinct=True),
    ops.CreateIndex("items_doc_idx", "items", "doc", method="gist",
                    opclass={"doc": "tsvector_ops(siglen=100)"}),
]"""
INDEX_OLD = ["INSERT INTO items (id, sku, tags, made, code) "
             "VALUES (%(k)s, 'o' || %(v)s, ARRAY['x'], now(), 'o' || %(k)s)"]
INDEX_NEW = ["INSERT INTO items (id, sku, tags, made, code) "
             "VALUES (%(k)s, 'n' || %(v)s, ARRAY['y'], now(), 'c' || %(k)s)"]


def index_clients(conn: Conn, phase: Phase) -> None:
    definitions = dict(conn.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid = 'items'::regclass AND indisvalid").fetchall())
    assert definitions["items_sku_pattern_idx"].endswith(
        'USING btree (sku COLLATE "C" text_pattern_ops, made DESC NULLS LAST) '
        "WITH (fillfactor='70')")
    assert definitions["items_tags_idx"].endswith("USING gin (tags) WITH (fastupdate=off)")
    assert definitions["items_code_key"].endswith("USING btree (code) NULLS NOT DISTINCT")
    assert definitions["items_doc_idx"].endswith("USING gist (doc tsvector_ops (siglen='100'))")
    with pytest.raises(psycopg.errors.UniqueViolation):  # a second NULL code is a duplicate
        conn.execute("INSERT INTO items (id, code) VALUES (%s, NULL)", [next(KEYS)])


@pytest.mark.pg(">= 15")
def test_create_index_options_lifecycle(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, INDEXED.replace("NULL FROM", "CASE WHEN g = 1 THEN NULL ELSE 'c' || g END FROM"))
    lifecycle_under_writers(tmp_path, db_url, dsn, INDEX_OPS, INDEX_OLD, INDEX_NEW, index_clients)


@pytest.mark.pg(">= 15")
def test_create_index_options_rollback(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, INDEXED.replace("NULL FROM", "'c' || g FROM"))
    rollbacks(tmp_path, db_url, dsn, INDEX_OPS, INDEX_OLD)


# -- AddForeignKey and AddUnique with `fix`: old versions keep writing what they always wrote --

ACCOUNTS = """
CREATE TABLE accounts (id int PRIMARY KEY, email text);
CREATE TABLE orders (id int PRIMARY KEY, account_id int, note text);
INSERT INTO accounts SELECT g, 'e' || (g % 4) FROM generate_series(1, 10) g;
INSERT INTO orders SELECT g, g * 3, 'n' FROM generate_series(1, 10) g;
"""
FIX_OPS = """[
    ops.AddForeignKey("orders", ["account_id"], "accounts", ["id"], fix={"account_id": "NULL"}),
    ops.AddUnique("accounts", ["email"], fix={"email": "email || '+' || id"}),
]"""
# the old version writes dangling references and duplicate e-mails, as it always did
FIX_OLD = ["INSERT INTO orders VALUES (%(k)s, %(v)s, 'old')",
           "INSERT INTO accounts VALUES (%(k)s, 'e1')",
           "UPDATE accounts SET email = 'e2' WHERE id = 5"]
FIX_NEW = ["INSERT INTO orders VALUES (%(k)s, 1, 'new')",
           "INSERT INTO accounts VALUES (%(k)s, 'new' || %(k)s)"]


def fix_clients(conn: Conn, phase: Phase) -> None:
    k = next(KEYS)
    if phase < Phase.CONTRACT:
        conn.execute("INSERT INTO orders VALUES (%s, 424242, 'old')", [k])
        assert one(conn, "SELECT account_id FROM orders WHERE id = %s", [k]) is None
        conn.execute("INSERT INTO accounts VALUES (%s, 'e3')", [k])
        assert one(conn, "SELECT email FROM accounts WHERE id = %s", [k]) == f"e3+{k}"
    if phase >= Phase.BACKFILL:
        assert one(conn, "SELECT count(*) FROM orders o WHERE account_id IS NOT NULL AND NOT "
                         "EXISTS (SELECT 1 FROM accounts a WHERE a.id = o.account_id)") == 0
        assert one(conn, "SELECT count(*) - count(DISTINCT email) FROM accounts") == 0
    kinds = constraint_names(conn, "accounts") | constraint_names(conn, "orders")
    assert ("accounts_email_key" in kinds) is (phase is Phase.CONTRACT)
    assert kinds["orders_account_id_fkey"] == "f"
    if phase is Phase.CONTRACT:
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("INSERT INTO orders VALUES (%s, 424242, 'late')", [-k])
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO accounts VALUES (%s, 'e1')", [-k])
        assert zdm_leftovers(conn) == []
        assert one(conn, "SELECT count(*) FROM pg_class WHERE relname LIKE 'zdm%%'") == 0


def test_fix_for_foreign_key_and_unique_lifecycle(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, ACCOUNTS)
    lifecycle_under_writers(tmp_path, db_url, dsn, FIX_OPS, FIX_OLD, FIX_NEW, fix_clients)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert one(conn, "SELECT convalidated FROM pg_constraint "
                         "WHERE conname = 'orders_account_id_fkey'") is True


def test_fix_for_foreign_key_and_unique_rollback(tmp_path: Path, db_url: str, dsn: str) -> None:
    setup(dsn, ACCOUNTS)
    rollbacks(tmp_path, db_url, dsn, FIX_OPS, FIX_OLD)


# -- ChangeColumnType without new_name: the column keeps its name, swapped at contract --

METRICS = """
CREATE TABLE metrics (id int PRIMARY KEY, hits int NOT NULL DEFAULT 0, label text);
CREATE INDEX metrics_hits_idx ON metrics (hits);
INSERT INTO metrics SELECT g, g * 10, 'm' FROM generate_series(1, 20) g;
"""
KEEP_NAME_OPS = '[ops.ChangeColumnType("metrics", "hits", "bigint", up="hits::bigint")]'
# both versions write `hits`, before and after the swap
KEEP_NAME_OLD = ["INSERT INTO metrics (id, hits) VALUES (%(k)s, %(v)s)",
                 "UPDATE metrics SET hits = hits + 1 WHERE id = 1"]
KEEP_NAME_NEW = ["INSERT INTO metrics (id, label) VALUES (%(k)s, 'new')",
                 "UPDATE metrics SET hits = %(v)s WHERE id = 2"]


def keep_name_clients(conn: Conn, phase: Phase) -> None:
    k = next(KEYS)
    cols = columns(conn, "metrics")
    if phase < Phase.CONTRACT:
        assert cols["hits"] == ("integer", True, "0")
        assert cols["zdm_new_hits"][0] == "bigint"
        conn.execute("INSERT INTO metrics (id, hits) VALUES (%s, 7)", [k])
        assert one(conn, "SELECT zdm_new_hits FROM metrics WHERE id = %s", [k]) == 7
    if Phase.BACKFILL <= phase < Phase.CONTRACT:
        assert one(conn, "SELECT count(*) FROM metrics "
                         "WHERE zdm_new_hits IS DISTINCT FROM hits") == 0
    if phase is Phase.CONTRACT:
        assert set(cols) == {"id", "hits", "label"}
        assert cols["hits"] == ("bigint", True, "(0)::bigint")
        conn.execute("INSERT INTO metrics (id, hits) VALUES (%s, 5000000000)", [k])
        conn.execute("INSERT INTO metrics (id) VALUES (%s)", [-k])
        assert one(conn, "SELECT hits FROM metrics WHERE id = %s", [-k]) == 0
        assert one(conn, "SELECT pg_get_indexdef('metrics_hits_idx'::regclass)").endswith(
            "USING btree (hits)")
        assert zdm_leftovers(conn) == []


def test_change_column_type_keeping_the_name_lifecycle(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    setup(dsn, METRICS)
    lifecycle_under_writers(tmp_path, db_url, dsn, KEEP_NAME_OPS, KEEP_NAME_OLD, KEEP_NAME_NEW,
                            keep_name_clients)
    with psycopg.connect(dsn, autocommit=True) as conn:  # no row lost its value in the swap
        assert one(conn, "SELECT hits FROM metrics WHERE id = 20") == 200


def test_change_column_type_keeping_the_name_rollback(
    tmp_path: Path, db_url: str, dsn: str
) -> None:
    setup(dsn, METRICS)
    rollbacks(tmp_path, db_url, dsn, KEEP_NAME_OPS, KEEP_NAME_OLD, keep_name_clients)
