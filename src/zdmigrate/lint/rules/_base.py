"""The Rule base class: a stable id, a category that decides severity per phase, examples.

A rule looks at one parsed statement (pglast JSON) with the linter's memory
(`LintState`) and yields `Finding`s; the runner turns them into `Violation`s,
applying phase policy, configuration and suppression comments.

Categories:
- ``destructive``: breaks the app version still running (DROP, RENAME, ...);
  an error in every phase but contract, allowed in contract because the fleet
  check proves no old version is live when contract is entered;
- ``lock``: takes a lock that stalls traffic (or rewrites the table); an error
  in every phase;
- ``correctness``: the migration is wrong or fragile whatever the phase;
- ``hygiene``: opt-in warnings about schema choices that age badly.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import ClassVar, NamedTuple

from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint._violation import Severity
from zdmigrate.phases import Phase


class Category(str, enum.Enum):
    DESTRUCTIVE = "destructive"
    LOCK = "lock"
    CORRECTNESS = "correctness"
    HYGIENE = "hygiene"

    def __str__(self) -> str:
        return self.value


class Finding(NamedTuple):
    """What a rule found in one statement. `what` names the object; `why`/`fix` override the rule's.

    A NamedTuple, not a frozen dataclass: as immutable, and built several times faster
    (a rule builds one per finding, thousands in a large file).
    """

    what: str
    table: str | None = None
    why: str | None = None
    fix: str | None = None
    line: int | None = None  # for findings about another statement (an unclosed BEGIN)


class Example(NamedTuple):
    """A rule's good or bad example: SQL, and the phase and PostgreSQL version it is linted for."""

    sql: str
    phase: Phase = Phase.EXPAND
    pg_version: int = 15


class Rule:
    """Base of every lint rule; subclasses register themselves by `id`."""

    id: ClassVar[str] = ""
    category: ClassVar[Category]
    #: one line: what the rule reports
    summary: ClassVar[str] = ""
    #: why it matters: which lock, which old app breaks
    why: ClassVar[str] = ""
    #: the safe way to do it
    fix: ClassVar[str] = ""
    #: node types of the statements the rule looks at ("AlterTableStmt", ...)
    targets: ClassVar[tuple[str, ...]] = ()
    #: for ALTER TABLE: the command subtypes the rule looks at (empty: all), so the
    #: runner can skip it for statements without them
    alter_subtypes: ClassVar[frozenset[str]] = frozenset()
    #: for DROP: the object types (``removeType``, as pglast names them) the rule looks
    #: at (empty: all), so the runner can skip it for the others
    remove_types: ClassVar[tuple[str, ...]] = ()
    #: a finding on a table created earlier in the same migration is dropped (it is empty)
    exempt_new_tables: ClassVar[bool] = True
    bad: ClassVar[tuple[Example, ...]] = ()
    good: ClassVar[tuple[Example, ...]] = ()
    #: warnings-only rules; hygiene rules are warnings
    default_severity: ClassVar[Severity | None] = None

    registry: ClassVar[dict[str, Rule]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.id:
            if cls.id in Rule.registry:
                raise RuntimeError(f"duplicate lint rule id {cls.id!r}")
            Rule.registry[cls.id] = cls()

    @property
    def severity(self) -> Severity:
        if self.default_severity is not None:
            return self.default_severity
        return Severity.WARNING if self.category is Category.HYGIENE else Severity.ERROR

    @property
    def enabled_by_default(self) -> bool:
        return self.category is not Category.HYGIENE

    def applies_in(self, phase: Phase) -> bool:
        """Destructive rules are off in contract: the fleet check gates that phase."""
        return not (self.category is Category.DESTRUCTIVE and phase is Phase.CONTRACT)

    def could_flag(self, text: str) -> bool:
        """False when no statement of this SQL text can give a finding (a cheap pre-filter).

        The runner then skips the rule for the whole text. The default is True; a rule
        that looks for something rare overrides it.
        """
        return True

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        return iter(())

    def finish(self, state: LintState) -> Iterator[Finding]:
        """Called at the end of each unit (a .sql text, a step) for rules that need it."""
        return iter(())

    def message(self, finding: Finding) -> str:
        why = finding.why or self.why
        fix = finding.fix or self.fix
        return f"{finding.what}. {why} Safe way: {fix}"
