"""New-version sessions keep working through the contract swap of a view rename.

Sessions with the version schema on their search_path query without pause while
contract renames the physical column and drops the schema: plain psycopg with
server-side prepared statements, and a SQLAlchemy Engine (compiled cache,
psycopg's automatic prepare) whose search_path comes from the runtime. Zero
errors, and queries ran on both sides of the swap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import sqlalchemy as sa

from tests.ops_lifecycle import MIGRATION_ID, Lifecycle
from zdmigrate.ops import _version_schema as versioned
from zdmigrate.phases import Phase
from zdmigrate.runtime import Runtime
from zdmigrate.runtime import _version_schemas as runtime_schemas
from zdmigrate.runtime.sqla import use_search_path

VS = versioned.schema_name(MIGRATION_ID)
OPERATIONS = """[ops.RenameColumn("users", "name", "full_name", mode="view")]
compat = {"shop": {"read_new_from": "2.0", "old_unused_from": "2.0"}}"""


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Traffic:
    """Threads that run a client loop until stopped, recording every error."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.done: list[float] = []  # monotonic time of each successful round
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def run(self, loop: Callable[[], None], name: str) -> None:
        def body() -> None:
            while not self.stop.is_set():
                try:
                    loop()
                except Exception as exc:  # every failure counts
                    with self.lock:
                        self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
                else:
                    with self.lock:
                        self.done.append(time.monotonic())
        thread = threading.Thread(target=body, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def test_new_version_sessions_query_through_the_swap(tmp_path: Path, db_url: str, dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL DEFAULT 'x');"
                     "INSERT INTO users (name) SELECT 'u' || g FROM generate_series(1, 100) g")
    lc = Lifecycle(tmp_path / "migrations", db_url, OPERATIONS)
    lc.advance(Phase.SWITCH_READ)

    rt = Runtime(dsn, app="shop", version="2.0", poll_interval=0.1, heartbeat_interval=0.5)
    rt.start()
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1),
                              pool_size=2, max_overflow=0)
    try:
        wait_for(lambda: rt.search_path() == [VS], "the runtime to see the version schema")
        use_search_path(engine, rt)
        users = sa.Table("users", sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True),
                         sa.Column("full_name", sa.Text))
        traffic = Traffic()
        prepared = psycopg.connect(dsn, autocommit=True, options=f"-csearch_path={VS},public")

        def psycopg_client() -> None:
            name = prepared.execute("SELECT full_name FROM users WHERE id = %s", [1],
                                    prepare=True).fetchone()
            assert name is not None
            new_id = prepared.execute("INSERT INTO users (full_name) VALUES (%s) RETURNING id",
                                      ["p"], prepare=True).fetchone()
            assert new_id is not None
            prepared.execute("UPDATE users SET full_name = %s WHERE id = %s",
                             ["q", new_id[0]], prepare=True)

        def sqlalchemy_client() -> None:
            with engine.begin() as conn:
                new_id = conn.execute(sa.insert(users).values(full_name="s")
                                      .returning(users.c.id)).scalar_one()
                conn.execute(sa.update(users).where(users.c.id == new_id)
                             .values(full_name="t"))
                assert conn.execute(sa.select(users.c.full_name)
                                    .where(users.c.id == new_id)).scalar_one() == "t"

        traffic.run(psycopg_client, "psycopg prepared")
        traffic.run(sqlalchemy_client, "sqlalchemy")
        traffic.run(sqlalchemy_client, "sqlalchemy 2")
        time.sleep(0.5)
        swap_started = time.monotonic()
        lc.advance(Phase.CONTRACT)
        swap_done = time.monotonic()
        time.sleep(0.5)
        wait_for(lambda: rt.search_path() == [], "the runtime to see the schema gone")
        time.sleep(0.3)
        traffic.finish()
        assert traffic.errors == []
        assert any(t < swap_started for t in traffic.done)
        assert sum(t > swap_done for t in traffic.done) > 10
        # the psycopg client really used server-side prepared statements
        assert prepared.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() != (0,)
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("SELECT to_regnamespace(%s)", [VS]).fetchone() == (None,)
            assert conn.execute("SELECT count(*) FROM users WHERE full_name IN ('q', 't')"
                                ).fetchone() != (0,)
        prepared.close()
    finally:
        engine.dispose()
        rt.stop()


def test_runtime_search_path_follows_compat_and_stacks(dsn: str) -> None:
    """Only versions at or above read_new_from get a schema; newer migrations come first."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for migration, read_new in [("0002_a", {"shop": "2.0"}), ("0003_b", {"shop": "2.1"}),
                                    ("0004_c", {"admin": "1.0"})]:
            name = versioned.schema_name(migration)
            conn.execute(f'CREATE SCHEMA "{name}"')
            conn.execute(versioned.comment_step(migration, read_new).sql)
        conn.execute("CREATE SCHEMA zdm_not_ours")
        schemas = runtime_schemas.load(conn)
    path = runtime_schemas.search_path_for
    assert path(schemas, "shop", "1.9") == []
    assert path(schemas, "shop", "2.0.3") == ["zdm_0002_a"]
    assert path(schemas, "shop", "2.1") == ["zdm_0003_b", "zdm_0002_a"]
    assert path(schemas, "admin", "1.0") == ["zdm_0004_c"]
    assert path(schemas, "shop", "not a version") == []
    assert runtime_schemas.MARKER_KEY == versioned.MARKER_KEY


def test_pooled_connections_follow_expand_and_contract(tmp_path: Path, db_url: str,
                                                       dsn: str) -> None:
    """A connection pooled before expand gets the version schema at its next checkout,
    and loses it after contract; versions below read_new_from never get it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigserial PRIMARY KEY, name text)")
    lc = Lifecycle(tmp_path / "migrations", db_url, OPERATIONS)
    url = db_url.replace("postgresql://", "postgresql+psycopg://", 1)
    new_rt = Runtime(dsn, app="shop", version="2.0", poll_interval=0.1).start()
    old_rt = Runtime(dsn, app="shop", version="1.9", poll_interval=0.1).start()
    new_engine = sa.create_engine(url, pool_size=1, max_overflow=0)
    old_engine = sa.create_engine(url, pool_size=1, max_overflow=0)
    use_search_path(new_engine, new_rt)
    use_search_path(old_engine, old_rt)

    def search_path(engine: sa.Engine) -> str:
        with engine.connect() as conn:
            return str(conn.execute(sa.text("SHOW search_path")).scalar_one())

    try:
        base = search_path(new_engine)
        assert base == search_path(old_engine)
        lc.advance(Phase.EXPAND)
        wait_for(lambda: new_rt.search_path() == [VS], "the runtime to see the version schema")
        assert search_path(new_engine) == f"{VS}, {base}"
        assert search_path(old_engine) == base
        with new_engine.connect() as conn:
            conn.execute(sa.text("INSERT INTO users (full_name) VALUES ('ann')"))
            conn.commit()
        lc.advance(Phase.CONTRACT)
        wait_for(lambda: new_rt.search_path() == [], "the runtime to see the schema gone")
        assert search_path(new_engine) == base
    finally:
        new_engine.dispose()
        old_engine.dispose()
        new_rt.stop()
        old_rt.stop()


def test_gate_refuses_a_version_whose_instances_lack_the_search_path(
        tmp_path: Path, db_url: str, dsn: str) -> None:
    """Live instances of 2.0 report their connections' search_path through the runtime;
    without the version schema (and without use_search_path) the gate says no."""
    from zdmigrate.gate import run_gate

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigserial PRIMARY KEY, name text)")
    lc = Lifecycle(tmp_path / "migrations", db_url, OPERATIONS)
    lc.advance(Phase.SWITCH_READ)

    def checks(version: str) -> list[str]:
        return [b.check for b in run_gate(lc.settings, app="shop", version=version).blockers]

    assert checks("2.0") == []  # nothing reported: nothing to judge
    bare = Runtime(dsn, app="shop", version="2.0", instance_id="bare").start()
    try:
        wait_for(lambda: "gate-search-path" in checks("2.0"), "the heartbeat")
        answer = run_gate(lc.settings, app="shop", version="2.0")
        (blocker,) = answer.blockers
        assert f"options=-csearch_path={VS},public" in blocker.message
        assert checks("2.1") == []  # another version: its instances are not live yet
    finally:
        bare.stop()
    with_option = Runtime(f"{dsn} options='-csearch_path={VS},public'", app="shop",
                          version="2.0", instance_id="dsn").start()
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    hooked = Runtime(dsn, app="shop", version="2.0", instance_id="hooked")
    use_search_path(engine, hooked)
    hooked.start()
    def reported() -> set[str]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return {r[0] for r in conn.execute(
                "SELECT instance_id FROM zdmigrate.instances WHERE info ? 'search_path'")}

    try:
        wait_for(lambda: reported() == {"dsn", "hooked"}, "both heartbeats")
        assert checks("2.0") == []
    finally:
        with_option.stop()
        hooked.stop()
        engine.dispose()


def test_sessions_query_through_a_table_rename_swap(tmp_path: Path, db_url: str,
                                                    dsn: str) -> None:
    """RenameTable(mode="view") and a column rename of the same table in one view: the
    swap renames the table and the column and drops the view while prepared
    statements and SQLAlchemy's compiled cache keep running, with 0 errors."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE carts (id bigserial PRIMARY KEY, owner text NOT NULL "
                     "DEFAULT 'x'); INSERT INTO carts (owner) VALUES ('a')")
    lc = Lifecycle(tmp_path / "migrations", db_url, (
        '[ops.RenameTable("carts", "baskets", mode="view"),\n'
        ' ops.RenameColumn("carts", "owner", "holder", mode="view")]\n'
        'compat = {"shop": {"read_new_from": "2.0", "old_unused_from": "2.0"}}'))
    lc.advance(Phase.SWITCH_READ)
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1),
                              pool_size=2, max_overflow=0,
                              connect_args={"options": f"-csearch_path={VS},public"})
    baskets = sa.Table("baskets", sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True),
                       sa.Column("holder", sa.Text))
    prepared = psycopg.connect(dsn, autocommit=True, options=f"-csearch_path={VS},public")
    traffic = Traffic()
    try:
        def psycopg_client() -> None:
            row = prepared.execute("INSERT INTO baskets (holder) VALUES (%s) RETURNING id, holder",
                                   ["p"], prepare=True).fetchone()
            assert row is not None and row[1] == "p"
            prepared.execute("DELETE FROM baskets WHERE id = %s", [row[0]], prepare=True)

        def sqlalchemy_client() -> None:
            with engine.begin() as conn:
                new_id = conn.execute(sa.insert(baskets).values(holder="s")
                                      .returning(baskets.c.id)).scalar_one()
                assert conn.execute(sa.select(baskets.c.holder)
                                    .where(baskets.c.id == new_id)).scalar_one() == "s"

        traffic.run(psycopg_client, "psycopg prepared")
        traffic.run(sqlalchemy_client, "sqlalchemy")
        wait_for(lambda: len(traffic.done) > 10, "traffic before the swap", timeout=60)
        lc.advance(Phase.CONTRACT)
        swapped = len(traffic.done)
        wait_for(lambda: len(traffic.done) > swapped + 10, "traffic after the swap", timeout=60)
        traffic.finish()
        assert traffic.errors == []
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("SELECT to_regclass('public.baskets') IS NOT NULL, "
                                "to_regnamespace(%s)", [VS]).fetchone() == (True, None)
    finally:
        traffic.finish()
        prepared.close()
        engine.dispose()
