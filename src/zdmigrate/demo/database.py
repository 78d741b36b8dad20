"""Where the demo runs: an embedded PostgreSQL, or a throw-away database on the server given.

With ``--database-url`` the demo never touches the database the URL names: it
connects there only to ``CREATE DATABASE zdmigrate_demo_<random>`` (the role
needs CREATEDB), runs everything inside that new database, and drops it at the
end (``DROP DATABASE ... WITH (FORCE)``), also when the demo fails or is
interrupted. Without a URL it starts an embedded PostgreSQL in a temporary
directory and removes the directory afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from zdmigrate.config import redact_url
from zdmigrate.db import connect, server_major
from zdmigrate.errors import BadInput


@dataclass(frozen=True)
class DemoDatabase:
    url: str
    #: Said to the user: which server, never a password.
    description: str
    server_version: str


@contextmanager
def demo_database(database_url: str | None) -> Iterator[DemoDatabase]:
    """Yield a database of the demo's own; remove it (or the embedded server) afterwards."""
    if database_url:
        with _throwaway_database(database_url) as found:
            yield found
        return
    from zdmigrate.embedded import embedded_postgres

    with embedded_postgres() as url:
        version = _server_version(url)
        yield DemoDatabase(url, f"an embedded PostgreSQL {version} (temporary directory)", version)


@contextmanager
def _throwaway_database(admin_url: str) -> Iterator[DemoDatabase]:
    name = f"zdmigrate_demo_{secrets.token_hex(4)}"
    admin = connect(admin_url, application_name="zdmigrate demo")
    with admin:
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.InsufficientPrivilege:
            raise BadInput(
                f"the role of {redact_url(admin_url)} may not create databases; the demo runs "
                "in a throw-away database of its own and never touches existing ones",
                hint="use a role with CREATEDB, or run `zdmigrate demo` without --database-url "
                "(embedded PostgreSQL)",
            ) from None
        version = str(admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        try:
            params = conninfo_to_dict(admin_url)
            host = params.get("host") or "localhost"
            yield DemoDatabase(
                make_conninfo(admin_url, dbname=name),
                f"database {name} (created for the demo, dropped after it) on PostgreSQL "
                f"{version} at {host}",
                version,
            )
        finally:
            _drop(admin, name)


def _drop(admin: psycopg.Connection[object], name: str) -> None:
    major = server_major(admin)
    if major >= 13:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        return
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                  [name])
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def _server_version(url: str) -> str:
    with connect(url, application_name="zdmigrate demo") as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
