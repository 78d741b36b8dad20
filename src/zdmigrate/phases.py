"""The five phases of an expand-and-contract migration, and their order.

A migration's state is the last phase it completed: `pending` first, `contract`
last (complete). Compare phases with `<`, `>=`: they are ordered.

    >>> Phase.parse("switch-read") > Phase.BACKFILL
    True
"""

from __future__ import annotations

import enum
from functools import total_ordering

from zdmigrate.errors import UnknownPhase


@total_ordering
class Phase(enum.Enum):
    PENDING = "pending"
    EXPAND = "expand"
    DUAL_WRITE = "dual-write"
    BACKFILL = "backfill"
    SWITCH_READ = "switch-read"
    CONTRACT = "contract"

    @property
    def index(self) -> int:
        return _ORDER.index(self)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Phase):
            return NotImplemented
        return self.index < other.index

    @property
    def function_name(self) -> str:
        """The name of the phase function in a migration file (``dual_write``)."""
        return self.value.replace("-", "_")

    @property
    def next(self) -> Phase | None:
        i = self.index
        return _ORDER[i + 1] if i + 1 < len(_ORDER) else None

    @property
    def previous(self) -> Phase | None:
        i = self.index
        return _ORDER[i - 1] if i > 0 else None

    @property
    def is_complete(self) -> bool:
        return self is Phase.CONTRACT

    @classmethod
    def parse(cls, name: str) -> Phase:
        """A phase from its name; accepts `dual-write`, `dual_write`, `DUAL_WRITE`."""
        key = name.strip().lower().replace("_", "-")
        for phase in cls:
            if phase.value == key:
                return phase
        names = ", ".join(p.value for p in cls)
        raise UnknownPhase(f"unknown phase {name!r}; phases are: {names}")

    def __str__(self) -> str:
        return self.value


_ORDER = list(Phase)

#: The phases that do work, in order (everything but `pending`).
WORK_PHASES: tuple[Phase, ...] = tuple(_ORDER[1:])


def phases_between(start: Phase, end: Phase) -> list[Phase]:
    """The phases entered when going from `start` (done) up to `end` (inclusive)."""
    return [p for p in WORK_PHASES if start < p <= end]
