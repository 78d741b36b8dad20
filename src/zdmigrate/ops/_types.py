"""Column types given as SQL text or as SQLAlchemy types, rendered as PostgreSQL type names."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeEngine, to_instance

from zdmigrate.errors import OperationInvalid

TypeSpec = str | TypeEngine[Any] | type[TypeEngine[Any]]


def render_type(value: TypeSpec) -> str:
    """``"numeric(10,2)"`` stays as written; ``sa.Numeric(10, 2)`` becomes ``NUMERIC(10, 2)``."""
    if isinstance(value, str):
        if not value.strip():
            raise OperationInvalid("a column type must not be empty")
        return value.strip()
    if isinstance(value, TypeEngine) or (isinstance(value, type) and issubclass(value, TypeEngine)):
        return str(to_instance(value).compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    raise OperationInvalid(f"a column type must be SQL text or a SQLAlchemy type, got {value!r}")
