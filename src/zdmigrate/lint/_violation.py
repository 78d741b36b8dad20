"""What the linter reports: a `Violation` of one rule at one place, with its `Severity`.

A violation is plain data (`as_dict` gives JSON-ready values) so reporters, the
phase engine and tests all read the same fields.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Severity(str, enum.Enum):
    """How bad a violation is: errors fail `zdmigrate lint` (exit 1), warnings only with --strict."""

    ERROR = "error"
    WARNING = "warning"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Violation:
    """One rule broken by one statement.

    `path` and `line` say where the author wrote it: the SQL line in a .sql file,
    the line of the ``ctx.execute(...)`` / ``op.*(...)`` / operation call in a
    Python migration. `phase` is the phase the statement runs in (its value,
    ``"expand"``). `statement` is the SQL of the offending statement.
    """

    rule: str
    severity: Severity
    message: str
    path: str | None = None
    line: int | None = None
    phase: str | None = None
    statement: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    @property
    def location(self) -> str:
        """``path:line`` as far as known (``<sql>`` when there is no path)."""
        where = self.path or "<sql>"
        return f"{where}:{self.line}" if self.line is not None else where

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "message": self.message,
            "path": self.path,
            "line": self.line,
            "phase": self.phase,
            "statement": self.statement,
        }


def sort_key(v: Violation) -> tuple[str, int, str]:
    return (v.path or "", v.line or 0, v.rule)
