"""SQL: hand-written SQL per phase, for what no operation covers.

    ops.SQL(expand="CREATE EXTENSION IF NOT EXISTS citext",
            rollback="DROP EXTENSION IF EXISTS citext")

Each argument is SQL text (several statements are split into steps, each run
on its own; CONCURRENTLY statements run outside a transaction) or a list of
statements. `rollback` is the SQL that undoes expand, or a dict mapping phase
names to the SQL that undoes that phase. The linter checks this SQL like any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops.base import Operation
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step, needs_autocommit, split_sql

SQLText = str | Sequence[str] | None


def _statements(value: SQLText, what: str) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(s, str) for s in items):
        raise OperationInvalid(f"SQL({what}=...) must be SQL text or a list of SQL texts")
    return [stmt for text in items for stmt, _line in split_sql(text)]


class SQL(Operation):
    name = "sql"

    def __init__(
        self,
        expand: SQLText = None,
        dual_write: SQLText = None,
        backfill: SQLText = None,
        switch_read: SQLText = None,
        contract: SQLText = None,
        rollback: SQLText | Mapping[str, SQLText] = None,
    ) -> None:
        given = {Phase.EXPAND: expand, Phase.DUAL_WRITE: dual_write, Phase.BACKFILL: backfill,
                 Phase.SWITCH_READ: switch_read, Phase.CONTRACT: contract}
        self.forward = {p: _statements(v, p.function_name) for p, v in given.items()}
        self.backward: dict[Phase, list[str]] = {}
        if isinstance(rollback, Mapping):
            for key, value in rollback.items():
                phase = Phase.parse(key)
                if phase in (Phase.PENDING, Phase.CONTRACT):
                    raise OperationInvalid(f"SQL(rollback=...): phase {key!r} cannot be rolled back")
                self.backward[phase] = _statements(value, f"rollback[{key!r}]")
        elif rollback is not None:
            self.backward[Phase.EXPAND] = _statements(rollback, "rollback")

    @staticmethod
    def _steps(statements: list[str]) -> list[Step]:
        return [SQLStep(s, autocommit=needs_autocommit(s)) for s in statements]

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        return self._steps(self.forward.get(phase, []))

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        return self._steps(self.backward.get(phase, []))

    def no_view_reason(self) -> str:
        return ("zdmigrate cannot tell what hand-written SQL does to a table's columns; "
                "put it in a migration without version_schema")

    def describe(self) -> str:
        return "sql"
