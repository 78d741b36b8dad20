"""The shop under live traffic as the benchmarks run it: a server, the renamed shop, its fleet.

What `zero_downtime.py`, `many_databases.py` and `rename_at_scale.py` share: the
server they create throw-away databases on, shop 2.0 after the users.name ->
full_name rename, and one database's app instances with the router that spreads
the requests over them, deployed by counts of instances per version.

    with ShopTraffic(url, stats=stats, rate=200, seeded_rows=rows, schema="zdmigrate",
                     versions={OLD: OldShop, NEW: RenamedShop}) as traffic:
        traffic.deploy({OLD: 2})
        traffic.deploy({OLD: 1, NEW: 1})
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import psycopg

from zdmigrate.demo.instances import Fleet, Router
from zdmigrate.demo.shop import OldShop, ShopVersion
from zdmigrate.demo.traffic import TrafficStats
from zdmigrate.embedded import embedded_postgres

NEW = "2.0"
BASE, RENAME = "0001_create_users", "0002_rename_users_name"


class RenamedShop(OldShop):
    """shop 2.0 after the rename: ``full_name`` wherever 1.4 used ``name``."""

    version = NEW

    def read_user(self, conn: psycopg.Connection[Any], rng: Any) -> None:
        conn.execute("SELECT id, full_name, email FROM users WHERE id = %s", [self.user_id(rng)])

    def rename_user(self, conn: psycopg.Connection[Any], rng: Any) -> None:
        conn.execute("UPDATE users SET full_name = %s WHERE id = %s",
                     [self.new_name(rng), self.user_id(rng)])

    def sign_up(self, conn: psycopg.Connection[Any], rng: Any) -> None:
        conn.execute("INSERT INTO users (full_name, email) VALUES (%s, %s)",
                     [self.new_name(rng), self.new_email()])


@contextmanager
def server(url: str | None) -> Iterator[tuple[str, str]]:
    """The given server, or an embedded PostgreSQL: its URL and what it is."""
    if url:
        yield url, "the given server"
        return
    with embedded_postgres() as embedded:
        yield embedded, "an embedded PostgreSQL (embedded-postgres package)"


class ShopTraffic:
    """One database's shop instances and their router (`rate` requests/s in all).

    Nothing runs until `deploy`; leaving the `with` block stops every instance.
    """

    def __init__(self, url: str, *, stats: TrafficStats, rate: float, seeded_rows: int,
                 schema: str, versions: Mapping[str, type[ShopVersion]],
                 with_runtime: bool = True) -> None:
        self.router = Router(rate)
        self.fleet = Fleet(url, stats=stats, router=self.router, seeded_rows=seeded_rows,
                           schema=schema, versions=versions, with_runtime=with_runtime)

    def deploy(self, counts: Mapping[str, int]) -> None:
        """Route the requests by these instance counts, then start or stop instances to them."""
        self.router.route({version: float(n) for version, n in counts.items()})
        self.fleet.scale(counts)

    def __enter__(self) -> ShopTraffic:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.fleet.stop_all()
