"""The shop app of `migrations_example/`, version by version, as requests against its tables.

- ``1.4`` (old) knows the first schema: ``users.name``, ``users.email``,
  ``orders.total_cents``. It predates every change and never looks at phases.
- ``1.5`` (dual-writing) writes ``users.name`` and ``users.full_name`` through
  ``zdmigrate.runtime.DualWrite`` while both exist, and reads the column the
  phase of 0002 says.
- any later version (new: 3.4, 4.1, ... as the migrations' compat asks) reads
  and writes only the new shapes: ``full_name``, ``email_lower``,
  ``orders.total`` and an explicit ``status``. It writes ``users.email`` only
  while 0019's expand has not run (until then nothing else fills that NOT NULL
  column; after it, a trigger does, and contract drops it).

Every request is one statement on an autocommit connection, as a web request
through a pool would be. Emails are unique and lower case, so the unique index
of 0004 never refuses a sign-up.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from zdmigrate.phases import Phase
from zdmigrate.runtime import Runtime

APP = "shop"
OLD = "1.4"
DUAL_WRITING = "1.5"


def role(version: str) -> str:
    """What a version is, in the words the live view uses."""
    return {OLD: "old", DUAL_WRITING: "dual-writing"}.get(version, "new")

RENAME = "0002_rename_users_name"
DROP_EMAIL = "0019_retire_saved_items"

_FIRST_NAMES = ("Ann", "Bo", "Chen", "Dara", "Emil", "Farah", "Gus", "Hana", "Ivo", "Jun")

#: The kinds of request and how often each comes (weights).
REQUEST_MIX = (
    ("read_user", 50),
    ("read_orders", 15),
    ("rename_user", 15),
    ("sign_up", 10),
    ("place_order", 10),
)

Request = Callable[[psycopg.Connection[Any], random.Random], None]


def seed(conn: psycopg.Connection[Any], rows: int) -> None:
    """`rows` users with one order each, in the shape of 0001 (before any change)."""
    conn.execute(
        "INSERT INTO users (name, email) "
        "SELECT 'user ' || g, 'user' || g || '@example.com' FROM generate_series(1, %s) g",
        [rows],
    )
    conn.execute(
        "INSERT INTO orders (user_id, total_cents) "
        "SELECT g, 100 + (g * 37) %% 9900 FROM generate_series(1, %s) g",
        [rows],
    )
    conn.execute("ANALYZE users")
    conn.execute("ANALYZE orders")


class ShopVersion:
    """One version's requests; `request` picks one kind by `REQUEST_MIX` and runs it."""

    version = ""

    def __init__(self, runtime: Runtime | None, seeded_rows: int) -> None:
        self.runtime = runtime
        self.seeded_rows = max(1, seeded_rows)
        self._kinds = [kind for kind, _ in REQUEST_MIX]
        self._weights = [weight for _, weight in REQUEST_MIX]

    def request(self, conn: psycopg.Connection[Any], rng: random.Random) -> str:
        kind = rng.choices(self._kinds, self._weights)[0]
        handler: Request = getattr(self, kind)
        handler(conn, rng)
        return kind

    def reconnected(self, conn: psycopg.Connection[Any]) -> None:
        """Called with the new connection after the instance reconnected (a lost one)."""

    def user_id(self, rng: random.Random) -> int:
        return rng.randint(1, self.seeded_rows)

    @staticmethod
    def new_email() -> str:
        return f"u{uuid.uuid4().hex}@example.com"

    @staticmethod
    def new_name(rng: random.Random) -> str:
        return f"{rng.choice(_FIRST_NAMES)} {rng.randint(1, 9999)}"

    def read_user(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        raise NotImplementedError

    def read_orders(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        raise NotImplementedError

    def rename_user(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        raise NotImplementedError

    def sign_up(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        raise NotImplementedError

    def place_order(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        raise NotImplementedError


class OldShop(ShopVersion):
    """shop 1.4: the schema of 0001 only."""

    version = OLD

    def read_user(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        conn.execute("SELECT id, name, email FROM users WHERE id = %s", [self.user_id(rng)])

    def read_orders(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        conn.execute(
            "SELECT id, total_cents, created_at FROM orders WHERE user_id = %s "
            "ORDER BY created_at DESC LIMIT 5",
            [self.user_id(rng)],
        )

    def rename_user(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        conn.execute("UPDATE users SET name = %s WHERE id = %s",
                     [self.new_name(rng), self.user_id(rng)])

    def sign_up(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        conn.execute("INSERT INTO users (name, email) VALUES (%s, %s)",
                     [self.new_name(rng), self.new_email()])

    def place_order(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        conn.execute("INSERT INTO orders (user_id, total_cents) VALUES (%s, %s)",
                     [self.user_id(rng), rng.randint(100, 99_999)])


class DualWritingShop(OldShop):
    """shop 1.5: like 1.4, but users' names go through DualWrite for 0002."""

    version = DUAL_WRITING

    def __init__(self, runtime: Runtime | None, seeded_rows: int) -> None:
        super().__init__(runtime, seeded_rows)
        if runtime is None:
            raise ValueError("shop 1.5 follows phases: it needs a Runtime")
        self.names = runtime.dual_write(RENAME, {"name": "full_name"})

    def read_user(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        column = self.names.read_column("name")
        conn.execute(
            sql.SQL("SELECT id, {}, email FROM users WHERE id = %s").format(sql.Identifier(column)),
            [self.user_id(rng)],
        )

    def rename_user(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        values = self.names.write({"name": self.new_name(rng)})
        conn.execute(
            sql.SQL("UPDATE users SET {} WHERE id = %s").format(
                sql.SQL(", ").join(
                    sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder()) for c in values
                )
            ),
            [*values.values(), self.user_id(rng)],
        )

    def sign_up(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        values = {**self.names.write({"name": self.new_name(rng)}), "email": self.new_email()}
        _insert(conn, "users", values)


class NewShop(ShopVersion):
    """shop 3.x and later: only the new shapes (full_name, email_lower, total, status)."""

    def read_user(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        conn.execute("SELECT id, full_name, email_lower FROM users WHERE id = %s",
                     [self.user_id(rng)])

    def read_orders(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        conn.execute(
            "SELECT id, total, status, created_at FROM orders WHERE user_id = %s "
            "ORDER BY created_at DESC LIMIT 5",
            [self.user_id(rng)],
        )

    def rename_user(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        conn.execute("UPDATE users SET full_name = %s WHERE id = %s",
                     [self.new_name(rng), self.user_id(rng)])

    def sign_up(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        email = self.new_email()
        values: dict[str, Any] = {"full_name": self.new_name(rng), "email_lower": email}
        if self.runtime is None or self.runtime.phase(DROP_EMAIL) is Phase.PENDING:
            values["email"] = email  # nothing fills the NOT NULL email before 0019's trigger
        _insert(conn, "users", values)

    def place_order(self, conn: psycopg.Connection[Any], rng: random.Random) -> None:
        conn.execute("INSERT INTO orders (user_id, total, status) VALUES (%s, %s, 'new')",
                     [self.user_id(rng), rng.randint(100, 99_999) / 100])


def app_class(version: str) -> type[ShopVersion]:
    """The requests `version` of the shop sends."""
    return {OLD: OldShop, DUAL_WRITING: DualWritingShop}.get(version, NewShop)


def _insert(conn: psycopg.Connection[Any], table: str, values: dict[str, Any]) -> None:
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(sql.Identifier(c) for c in values),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
        ),
        list(values.values()),
    )
