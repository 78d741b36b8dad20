"""Column defaults given as SQL text (``"now()"``) or as plain Python values (``0``, ``True``)."""

from __future__ import annotations

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops._names import render

DefaultSpec = str | int | float | bool | None


def render_default(value: DefaultSpec) -> str | None:
    """SQL text stays as written (it is an expression); numbers and booleans become literals."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            raise OperationInvalid("a default must not be empty; use None for no default")
        return value.strip()
    if isinstance(value, (bool, int, float)):
        return render(sql.Literal(value))
    raise OperationInvalid(f"a default must be SQL text or a number/boolean, got {value!r}")
