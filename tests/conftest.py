"""Shared fixtures: a real PostgreSQL server, a fresh database per test, the pg marker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from packaging.specifiers import SpecifierSet

from tests.fix_db import Server, fresh_database, get_server

pytest_plugins = ["tests.fix_replica"]


def pytest_report_header(config: pytest.Config) -> list[str]:
    server = get_server()
    return [f"PostgreSQL {server.major} (server_version_num {server.version_num}), via {server.kind}"]


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


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers(name="pg"):
        spec = SpecifierSet(marker.args[0].replace(" ", ""))
        major = get_server().major
        if str(major) not in spec:
            pytest.skip(f"needs PostgreSQL {marker.args[0]}, server is {major}")
