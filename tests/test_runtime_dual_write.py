"""DualWrite per phase against a real table whose shape follows the phase; SQLAlchemy helpers."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, undefer

from tests.test_runtime import ensure_state, instances, runtime_factory, set_phase, wait_until
from zdmigrate.phases import Phase
from zdmigrate.runtime import Runtime
from zdmigrate.runtime.sqla import mirror, read_column, write_values

__all__ = ["runtime_factory"]  # the fixture, shared with test_runtime.py

M = "0002_rename_users_name"

#: The DDL the engine runs when each phase is entered (a RenameColumn, app-side dual-write).
DDL = {
    Phase.EXPAND: "ALTER TABLE users ADD COLUMN full_name text",
    Phase.CONTRACT: "ALTER TABLE users DROP COLUMN name",
}

#: (phase, what write({"name": ...}) returns, read_column("name"))
EXPECTED = [
    (Phase.PENDING, {"name"}, "name"),
    (Phase.EXPAND, {"name", "full_name"}, "name"),
    (Phase.DUAL_WRITE, {"name", "full_name"}, "name"),
    (Phase.BACKFILL, {"name", "full_name"}, "name"),
    (Phase.SWITCH_READ, {"name", "full_name"}, "full_name"),
    (Phase.CONTRACT, {"full_name"}, "full_name"),
]


def enter(dsn: str, rt: Runtime, phase: Phase) -> None:
    """Enter `phase` as the engine would (DDL, then phase + NOTIFY) and wait for rt to see it."""
    if phase in DDL:
        with psycopg.connect(dsn) as conn:
            conn.execute(DDL[phase])
    if phase is Phase.BACKFILL:
        with psycopg.connect(dsn) as conn:
            conn.execute("UPDATE users SET full_name = name WHERE full_name IS NULL")
    set_phase(dsn, M, phase)
    assert wait_until(lambda: rt.phase(M) is phase)


def make_users(dsn: str) -> None:
    ensure_state(dsn)
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE users (id serial PRIMARY KEY, name text, email text)")


def test_write_and_read_column_through_every_phase(dsn, runtime_factory):
    make_users(dsn)
    rt = runtime_factory(poll_interval=3600)
    dw = rt.dual_write(M, {"name": "full_name"})
    for phase, written, read in EXPECTED:
        if phase is not Phase.PENDING:
            enter(dsn, rt, phase)
        values = dw.write({"name": f"Ann {phase}", "email": "a@x"})
        assert set(values) == written | {"email"}
        assert dw.read_column("name") == read
        with psycopg.connect(dsn) as conn:  # the real table accepts exactly that shape
            cols = list(values)
            conn.execute(
                psycopg.sql.SQL("INSERT INTO users ({}) VALUES ({})").format(
                    psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, cols)),
                    psycopg.sql.SQL(", ").join(psycopg.sql.Placeholder() * len(cols)),
                ),
                [values[c] for c in cols],
            )
            got = conn.execute(
                psycopg.sql.SQL("SELECT {} FROM users ORDER BY id DESC LIMIT 1").format(
                    psycopg.sql.Identifier(read)
                )
            ).fetchone()
        assert got == (f"Ann {phase}",)
    with psycopg.connect(dsn) as conn:  # every row written since expand reads the same new
        rows = conn.execute("SELECT full_name FROM users ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [f"Ann {p}" for p, _, _ in EXPECTED]


def test_new_shape_code_and_transforms(dsn, runtime_factory):
    ensure_state(dsn)
    rt = runtime_factory(poll_interval=3600)
    dw = rt.dual_write("m", {"cents": "amount"}, forward={"cents": lambda c: c / 100},
                       backward={"cents": lambda a: round(a * 100)})
    assert dw.write({"amount": 1.5}) == {"cents": 150}, "pending: new shape mapped back to old"
    set_phase(dsn, "m", Phase.DUAL_WRITE)
    assert wait_until(lambda: dw.phase is Phase.DUAL_WRITE)
    assert dw.write({"cents": 250}) == {"cents": 250, "amount": 2.5}
    assert dw.write({"amount": 2.5}) == {"amount": 2.5, "cents": 250}
    set_phase(dsn, "m", Phase.CONTRACT)
    assert wait_until(lambda: dw.phase is Phase.CONTRACT)
    assert dw.write({"cents": 300}) == {"amount": 3.0}
    with pytest.raises(ValueError, match="not old columns"):
        rt.dual_write("m", {"cents": "amount"}, forward={"amount": float})
    with pytest.raises(ValueError, match="has no column 'nope'"):
        dw.read_column("nope")


def test_shadow_reads_are_counted_per_phase_and_ride_on_heartbeats(dsn, runtime_factory):
    make_users(dsn)
    rt = runtime_factory(poll_interval=3600)
    dw = rt.dual_write(M, {"name": "full_name"})
    assert dw.compare({"name": "a", "full_name": "b"}) is True, "pending: nothing to compare"
    enter(dsn, rt, Phase.EXPAND)
    assert dw.compare({"name": "a", "full_name": None}) is False  # not backfilled yet
    enter(dsn, rt, Phase.BACKFILL)
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO users (name, full_name) VALUES ('x', 'x'), ('y', 'y'), ('z', 'Z')")
        rows = conn.execute("SELECT name, full_name FROM users").fetchall()
    results = [dw.compare({"name": n, "full_name": f}) for n, f in rows]
    assert results == [True, True, False]
    assert dw.compare({"name": "only old"}) is True  # a row without both: not counted
    rt.send_heartbeat_soon()

    def reported() -> Any:
        rows = instances(dsn)
        return rows[0]["info"]["shadow_reads"].get(M) if rows else None

    assert wait_until(lambda: (reported() or {}).get("compared") == 3)
    counts = reported()
    assert (counts["mismatched"], counts["phase"]) == (1, "backfill"), "reset at the phase change"


# -- SQLAlchemy Core -------------------------------------------------------------


def test_core_helpers_take_and_return_columns(dsn, db_url, runtime_factory):
    make_users(dsn)
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    users = sa.Table("users", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("name", sa.Text), sa.Column("full_name", sa.Text),
                     sa.Column("email", sa.Text))
    try:
        rt = runtime_factory(engine, poll_interval=3600)
        dw = rt.dual_write(M, {"name": "full_name"})
        with engine.begin() as conn:
            conn.execute(sa.insert(users).values(write_values(dw, {users.c.name: "Old"})))
        enter(dsn, rt, Phase.EXPAND)
        values = write_values(dw, {users.c.name: "Both", users.c.email: "b@x"})
        assert set(values) == {users.c.name, users.c.full_name, users.c.email}
        assert read_column(dw, users.c.name) is users.c.name
        with engine.begin() as conn:
            conn.execute(sa.insert(users).values(values))
        enter(dsn, rt, Phase.BACKFILL)
        enter(dsn, rt, Phase.SWITCH_READ)
        assert read_column(dw, users.c.name) is users.c.full_name
        with engine.connect() as conn:
            got = conn.execute(sa.select(read_column(dw, users.c.name)).order_by(users.c.id))
            assert [r[0] for r in got] == ["Old", "Both"]  # "Old" came by the backfill
    finally:
        engine.dispose()


# -- SQLAlchemy ORM --------------------------------------------------------------


def test_orm_mirror_is_one_line_and_follows_the_phase(dsn, db_url, runtime_factory):
    make_users(dsn)

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str | None]
        email: Mapped[str | None]

    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        rt = runtime_factory(poll_interval=3600)
        mirror(User, rt.dual_write(M, {"name": "full_name"}))  # the one line

        # pending: the table has no full_name; inserts, loads and updates still work
        with Session(engine) as session:
            ann = User(name="Ann", email="a@x")
            session.add(ann)
            session.commit()
            ann.name = "Ann A"
            session.commit()
            assert session.scalars(sa.select(User.name)).all() == ["Ann A"]

        enter(dsn, rt, Phase.EXPAND)
        with Session(engine) as session:
            session.add(User(name="Bob"))
            ann = session.scalars(sa.select(User).where(User.name == "Ann A")).one()
            ann.name = "Ann B"  # an update mirrors too, without loading full_name first
            session.commit()
            new_code = User(full_name="Cy")  # code written for the new shape
            session.add(new_code)
            session.commit()
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT name, full_name FROM users ORDER BY id").fetchall()
        assert rows == [("Ann B", "Ann B"), ("Bob", "Bob"), ("Cy", "Cy")]

        # loading both shapes counts a shadow read
        enter(dsn, rt, Phase.BACKFILL)
        with psycopg.connect(dsn) as conn:
            conn.execute("UPDATE users SET full_name = 'bad' WHERE name = 'Bob'")
        with Session(engine) as session:
            session.scalars(sa.select(User).options(undefer(User.full_name))).all()
        rt.send_heartbeat_soon()
        assert wait_until(
            lambda: instances(dsn)[0]["info"]["shadow_reads"].get(M, {}).get("compared") == 3
        )
        assert instances(dsn)[0]["info"]["shadow_reads"][M]["mismatched"] == 1
    finally:
        engine.dispose()


def test_mirror_refuses_an_unmapped_old_column(dsn, runtime_factory):
    class Base(DeclarativeBase):
        pass

    class Thing(Base):
        __tablename__ = "things"
        id: Mapped[int] = mapped_column(primary_key=True)

    rt = runtime_factory()
    with pytest.raises(ValueError, match="'label' is not a mapped column"):
        mirror(Thing, rt.dual_write("m", {"label": "title"}))
