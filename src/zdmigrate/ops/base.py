"""The Operation interface: an operation returns the steps of each phase as data.

An operation never touches a connection. The engine asks it for the steps of a
phase (`steps`), the steps that undo a phase (`rollback_steps`), the
requirements it must meet on the live schema before any DDL runs
(`requirements`) and before contract's first step (`contract_requirements`),
and executes all of them itself.

    class DropDefault(Operation):
        name = "drop_default"
        def steps(self, phase, migration_id):
            if phase is Phase.CONTRACT:
                return [SQLStep("ALTER TABLE ... ALTER COLUMN ... DROP DEFAULT")]
            return []
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from zdmigrate.ops._claims import Claim
from zdmigrate.ops._names import QualifiedName
from zdmigrate.phases import Phase
from zdmigrate.steps import Params, Source, Step, caller_source


@dataclass(frozen=True)
class Requirement:
    """A query the engine runs before the first phase, in a rolled-back transaction.

    With ``expect="true"`` the query must return one row whose first value is
    true; with ``expect="runs"`` it must merely run without error (used to check
    that an `up`/`down` expression compiles against the table); with
    ``expect="clear"`` it must return no row, and each row it returns is a
    sentence saying what is wrong. `problem` is the message shown (exit 2) when
    the requirement is not met.
    """

    sql: str
    problem: str
    params: Params = None
    expect: str = "true"


@dataclass(frozen=True)
class Shape:
    """What an operation does to one table as new app versions see it (a version schema).

    Columns are named as they are in the physical table at the end of expand:
    `hide` lists columns the new shape leaves out (dropped at contract), `show_as`
    maps a column to its name in the new shape, `new_name` is the table's name in
    it, `adds` lists the columns the operation adds to the table at expand.
    """

    table: QualifiedName
    hide: tuple[str, ...] = ()
    show_as: tuple[tuple[str, str], ...] = ()
    new_name: str | None = None
    adds: tuple[str, ...] = ()

    @property
    def needs_view(self) -> bool:
        """Does the new shape differ from the physical table at the end of expand?"""
        return bool(self.hide or self.show_as or self.new_name)


class Operation:
    """Base of every high-level operation. Subclasses register by `name`."""

    #: Stable snake_case name, used by the registry and in docs.
    name: ClassVar[str] = ""
    #: Where the operation was written in its migration file: the line that
    #: constructed it (the nearest caller outside zdmigrate). Every step it
    #: produces points there, so `plan`, errors and the linter (with its
    #: ``# zdmigrate: ignore[rule] reason`` comments) name that line.
    source: Source | None = None

    registry: ClassVar[dict[str, type[Operation]]] = {}
    #: True for operations that change no table's columns or name (indexes,
    #: constraints, defaults, comments, a new table): `new_shape` is then empty.
    keeps_table_shape: ClassVar[bool] = False

    def __new__(cls, *args: object, **kwargs: object) -> Operation:
        self = super().__new__(cls)
        self.source = caller_source()
        return self

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            Operation.registry[cls.name] = cls

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        """The steps this operation runs when `phase` is entered."""
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        """The steps that undo `phase` (never called for contract)."""
        return []

    def requirements(self) -> Sequence[Requirement]:
        """What must hold on the live schema before expand runs."""
        return []

    def claims(self, migration_id: str) -> Sequence[Claim]:
        """Every name this operation creates in any phase under a name zdmigrate generates
        (see `_claims`); the engine refuses to start when another object holds one."""
        return []

    def contract_requirements(self, migration_id: str) -> Sequence[Requirement]:
        """What must hold before contract's first step (of any operation of the migration)
        runs, e.g. that nothing else depends on a column about to be dropped; checked
        by the engine in a rolled-back transaction, so contract runs whole or not at all."""
        return []

    def new_shape(self) -> list[Shape] | None:
        """How the tables this operation touches look to new app versions, or None when
        a view cannot show it (a migration with ``version_schema = True`` refuses it,
        saying `no_view_reason`)."""
        return [] if self.keeps_table_shape else None

    def no_view_reason(self) -> str:
        """Why `new_shape` is None: shown when a version-schema migration refuses it."""
        return "zdmigrate cannot tell what it does to a table's columns"

    def describe(self) -> str:
        return self.name
