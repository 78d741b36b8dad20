"""The five phases of an expand-and-contract migration, and their order.

A migration's state is the last phase it completed: `pending` first, `contract`
last (complete). Compare phases with `<`, `>=`: they are ordered, also against
a phase's name. A phase is a `str` equal to its name, so code written against
the runtime may compare with plain strings:

    >>> Phase.parse("switch-read") > Phase.BACKFILL
    True
    >>> Phase.EXPAND == "expand", Phase.EXPAND < "backfill"
    (True, True)

Warning: the order is the phases' order, not the alphabet's
(``Phase.CONTRACT > "expand"``, though ``"contract" < "expand"`` as strings).
"""

from __future__ import annotations

import enum

from zdmigrate.errors import UnknownPhase


class Phase(str, enum.Enum):
    PENDING = "pending"
    EXPAND = "expand"
    DUAL_WRITE = "dual-write"
    BACKFILL = "backfill"
    SWITCH_READ = "switch-read"
    CONTRACT = "contract"

    @property
    def position(self) -> int:
        return _POSITION[self._name_]

    # str's own comparisons would order phases by the alphabet: order them by phase
    def __lt__(self, other: object) -> bool:
        return self.position < _ordered(other)

    def __le__(self, other: object) -> bool:
        return self.position <= _ordered(other)

    def __gt__(self, other: object) -> bool:
        return self.position > _ordered(other)

    def __ge__(self, other: object) -> bool:
        return self.position >= _ordered(other)

    # str's own, as C slots: a phase is a key of hot dicts in the linter, and a
    # Python-level __eq__/__hash__ would run a Python call per lookup
    __eq__ = str.__eq__
    __hash__ = str.__hash__

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def function_name(self) -> str:
        """The name of the phase function in a migration file (``dual_write``)."""
        return self.value.replace("-", "_")

    @property
    def next(self) -> Phase | None:
        i = self.position
        return _ORDER[i + 1] if i + 1 < len(_ORDER) else None

    @property
    def previous(self) -> Phase | None:
        i = self.position
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
_POSITION = {phase.name: index for index, phase in enumerate(_ORDER)}


def _ordered(other: object) -> int:
    """The position of a phase, or of a phase's name, in the order of phases."""
    if isinstance(other, Phase):
        return other.position
    if isinstance(other, str):
        return Phase.parse(other).position
    raise TypeError(f"a phase compares with a phase or a phase's name, not {type(other).__name__}")

#: The phases that do work, in order (everything but `pending`).
WORK_PHASES: tuple[Phase, ...] = tuple(_ORDER[1:])


def phases_between(start: Phase, end: Phase) -> list[Phase]:
    """The phases entered when going from `start` (done) up to `end` (inclusive)."""
    return [p for p in WORK_PHASES if start < p <= end]
