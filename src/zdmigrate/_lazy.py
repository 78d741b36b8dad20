"""A module imported on first attribute access, so light commands stay light.

`zdmigrate lint x.sql` must not import SQLAlchemy, Alembic or psycopg; the CLI
reaches the engine and the gate through `lazy_module` (with
real imports under TYPE_CHECKING, so types are still checked).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


def lazy_module(name: str) -> Any:
    return LazyModule(name)
