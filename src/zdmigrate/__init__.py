"""zdmigrate: zero-downtime PostgreSQL schema changes by expand and contract.

    from zdmigrate import Phase, Settings, load_migrations
    from zdmigrate import engine
    engine.advance(Settings.load({"database_url": url}))

Application code imports `zdmigrate.runtime` instead: it stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zdmigrate.errors import (
    BadInput,
    Blocker,
    CheckFailed,
    OperationalError,
    ZdmigrateError,
)
from zdmigrate.phases import Phase

__version__ = "0.1.0"

__all__ = [
    "BadInput",
    "Blocker",
    "CheckFailed",
    "Migration",
    "OperationalError",
    "Phase",
    "PhaseContext",
    "Settings",
    "ZdmigrateError",
    "__version__",
    "load_migrations",
]

if TYPE_CHECKING:
    from zdmigrate.config import Settings
    from zdmigrate.context import PhaseContext
    from zdmigrate.migration import Migration, load_migrations

_LAZY = {
    "Settings": "zdmigrate.config",
    "PhaseContext": "zdmigrate.context",
    "Migration": "zdmigrate.migration",
    "load_migrations": "zdmigrate.migration",
}


def __getattr__(name: str) -> Any:
    # lazy, so `import zdmigrate.runtime` does not drag in alembic or the parser
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zdmigrate' has no attribute {name!r}")
