"""Turn what the app passes (DSN, psycopg pool, SQLAlchemy engine) into a way to connect.

The runtime always opens one connection of its own, never one of the app's
pooled connections: it holds it for LISTEN, and a pool starved by the app must
not stop heartbeats. From a pool it takes the pool's conninfo and kwargs; from
an engine, the engine's URL (SQLAlchemy is imported only then).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from zdmigrate import dsn

#: A callable that opens a new autocommit psycopg connection.
Connect = Callable[[], "psycopg.Connection[Any]"]

#: libpq settings the runtime adds unless the source sets them: fail fast, notice dead peers.
_DEFAULTS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
}


def connector(source: object, application_name: str) -> Connect:
    """A function that opens a fresh autocommit connection to the database `source` names.

    `source` is a libpq DSN or URL, a ``psycopg_pool.ConnectionPool``, a SQLAlchemy
    ``Engine``, or a callable returning a psycopg connection (used as-is).
    """
    if isinstance(source, str):
        return _from_conninfo(source, {}, application_name)
    module = type(source).__module__
    if module.startswith("psycopg_pool"):
        conninfo = str(getattr(source, "conninfo", ""))
        kwargs = dict(getattr(source, "kwargs", None) or {})
        return _from_conninfo(conninfo, kwargs, application_name)
    if module.startswith("sqlalchemy"):
        return _from_conninfo(_engine_conninfo(source), {}, application_name)
    if callable(source):
        factory: Callable[[], psycopg.Connection[Any]] = source

        def connect_with_factory() -> psycopg.Connection[Any]:
            conn = factory()
            conn.autocommit = True
            return conn

        return connect_with_factory
    raise TypeError(
        "Runtime needs a DSN string, a psycopg_pool.ConnectionPool, a SQLAlchemy Engine "
        f"or a callable returning a psycopg connection, not {type(source).__name__}"
    )


def runtime_conninfo(
    conninfo: str, application_name: str, kwargs: Mapping[str, Any] | None = None
) -> str:
    """`conninfo` as the runtime connects with it: named, with its keepalive defaults."""
    # libpq's parse errors quote the string, password included: say it in our words
    problem = dsn.problem(conninfo)
    if problem is not None:
        raise ValueError(f"Runtime: {problem} ({dsn.redact(conninfo)})")
    conninfo = dsn.normalize_url(conninfo)
    params = conninfo_to_dict(conninfo)
    extra = {k: v for k, v in _DEFAULTS.items() if k not in params and k not in (kwargs or {})}
    return make_conninfo(conninfo, application_name=application_name, **extra)


def _from_conninfo(conninfo: str, kwargs: Mapping[str, Any], application_name: str) -> Connect:
    final = runtime_conninfo(conninfo, application_name, kwargs)
    kwargs = {k: v for k, v in kwargs.items() if k not in ("autocommit", "application_name")}

    def connect() -> psycopg.Connection[Any]:
        return psycopg.connect(final, autocommit=True, **kwargs)

    return connect


def _engine_conninfo(engine: object) -> str:
    url = engine.url  # type: ignore[attr-defined]
    if url.get_backend_name() != "postgresql":
        raise TypeError(f"Runtime needs a PostgreSQL engine, not {url.get_backend_name()!r}")
    return str(url.set(drivername="postgresql").render_as_string(hide_password=False))
