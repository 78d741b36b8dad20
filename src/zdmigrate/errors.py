"""One error tree for zdmigrate; every user-facing error carries its CLI exit code.

Exit codes (the CLI contract): 0 done; 1 a check said no; 2 bad usage or bad
input, nothing changed; 3 operational failure.

    try:
        engine.advance(settings)
    except ZdmigrateError as exc:
        sys.exit(exc.exit_code)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_OPERATIONAL = 3


class ZdmigrateError(Exception):
    """Base of every error zdmigrate raises on purpose."""

    exit_code: int = EXIT_OPERATIONAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


# -- 1: a check said no -------------------------------------------------------


@dataclass(frozen=True)
class Blocker:
    """One reason a phase may not be entered (or a deploy may not go out).

    `check` is a stable kebab-case id (``previous-migration``, ``lint``,
    ``fleet-old-version``, ...); `message` says what blocks and how to unblock it.
    """

    check: str
    message: str
    details: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"check": self.check, "message": self.message, **self.details}


class CheckFailed(ZdmigrateError):
    """A gate refused: lint errors, a phase gate, the deploy gate."""

    exit_code = EXIT_CHECK_FAILED

    def __init__(
        self, message: str, blockers: Sequence[Blocker] = (), *, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.blockers = list(blockers)

    def __str__(self) -> str:
        lines = [self.message, *(f"  - [{b.check}] {b.message}" for b in self.blockers)]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class PhaseRefused(CheckFailed):
    """`phase advance` or `phase rollback` refused because a gate did not pass.

    `done` holds the transitions (`engine.Transition`) that moved before the
    refusal: an advance over several phases may enter some, then be refused.
    """

    def __init__(
        self, message: str, blockers: Sequence[Blocker] = (), *, hint: str | None = None
    ) -> None:
        super().__init__(message, blockers, hint=hint)
        self.done: list[Any] = []


class LintFailed(CheckFailed):
    """The linter found errors."""


# -- 2: bad usage or bad input; nothing was changed ---------------------------


class BadInput(ZdmigrateError):
    """The user's input is wrong; nothing was changed."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(BadInput):
    """A setting is missing or malformed (flag, environment or pyproject.toml)."""


class MigrationFileError(BadInput):
    """A migration file cannot be loaded: syntax error, bad attribute, bad graph.

    `path` and `line` say where; the message says what.
    """

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = path if path is not None else ""
        if path is not None and line is not None:
            where = f"{path}:{line}"
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.path = path
        self.line = line


class UnknownMigration(BadInput):
    """A migration id that is not in the migrations directory."""


class UnknownPhase(BadInput):
    """A phase name that is not one of the five (or `pending`)."""


class MigrationChanged(BadInput):
    """A migration file changed after one of its phases ran."""


class OperationInvalid(BadInput):
    """An operation does not fit the live schema (missing table, taken name, ...)."""

    def __init__(self, message: str, problems: Sequence[str] = (), *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = list(problems)

    def __str__(self) -> str:
        lines = [self.message, *(f"  - {p}" for p in self.problems)]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class DataProblem(OperationInvalid):
    """A step met data or objects it cannot go past: rows violating a constraint being
    validated, objects that depend on what is dropped. Not an operational failure:
    nothing of that step was applied, and rerunning will not help until the data changes.
    `problems` counts the offending rows and shows a sample.
    """


class LintInternalError(ZdmigrateError):
    """The linter itself failed on some input (a zdmigrate bug); reported, never a traceback."""

    exit_code = EXIT_BAD_INPUT


# -- 3: operational failure ---------------------------------------------------


class OperationalError(ZdmigrateError):
    """The database or the environment failed; the run can be repeated."""

    exit_code = EXIT_OPERATIONAL


class DatabaseUnreachable(OperationalError):
    """The database cannot be reached (the DSN is shown without its password)."""


class RunLocked(OperationalError):
    """Another zdmigrate run holds this database's advisory lock."""


class LockRetriesExhausted(OperationalError):
    """A DDL step kept hitting lock_timeout until the retry budget ran out.

    Nothing of that step was applied; earlier steps stay recorded, so a rerun
    continues from this step.
    """


class StepFailed(OperationalError):
    """A step of a phase failed in the database (not a lock timeout)."""


class TargetsFailed(OperationalError):
    """One or more targets (of several databases) failed; the others ran to their end.

    `failures` maps each failed target's name to its error. The exit code is 1
    when every target that failed was refused by a check (a phase gate, the fleet
    check: "a check said no"), else 3: the run as a whole did not finish, and a
    rerun resumes only what is left.
    """

    def __init__(
        self, message: str, failures: Mapping[str, ZdmigrateError], *, hint: str | None = None
    ) -> None:
        self.failures = dict(failures)
        #: What the targets that did not fail did (the command's result), when known.
        self.done: Any = None
        refused = all(isinstance(e, CheckFailed) for e in self.failures.values())
        self.exit_code = EXIT_CHECK_FAILED if refused and self.failures else EXIT_OPERATIONAL
        names = ", ".join(sorted(self.failures))
        super().__init__(f"{message}: {len(self.failures)} target(s) failed: {names}", hint=hint)

    def __str__(self) -> str:
        lines = [self.message]
        for name in sorted(self.failures):
            error = self.failures[name]
            lines.append(f"  - {name}: {error.message}")
            lines += [f"      [{b.check}] {b.message}" for b in getattr(error, "blockers", ())]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


# -- transient database errors ------------------------------------------------

#: SQLSTATEs worth retrying, each with what it means to the person reading the log.
#: The one table: code that retries or explains a transient error looks here.
TRANSIENT_SQLSTATES: dict[str, str] = {
    "55P03": "lock timeout (an app transaction holds a row)",  # lock_not_available
    "57014": "statement timeout",  # query_canceled
    "40P01": "deadlock with an app transaction",  # deadlock_detected
    "40001": "serialization failure",  # serialization_failure
    "08000": "connection failure",  # connection_exception
    "08003": "connection failure (connection does not exist)",  # connection_does_not_exist
    "08006": "connection failure",  # connection_failure
    "57P01": "the server is shutting down (admin shutdown)",  # admin_shutdown
    "57P02": "the server crashed (crash shutdown)",  # crash_shutdown
    "57P03": "the server is starting up and cannot take connections yet",  # cannot_connect_now
}

#: The transient SQLSTATEs a backfill batch rolls back, shrinks and retries after a backoff.
BATCH_RETRY_SQLSTATES = frozenset({"55P03", "57014", "40P01", "40001"})


def transient_reason(sqlstate: str | None) -> str | None:
    """The human reason for a transient SQLSTATE, or None when it is not transient."""
    return TRANSIENT_SQLSTATES.get(sqlstate or "")


def first_line(exc: BaseException, *, problems: int = 0) -> str:
    """The first line of an error's message, or its class name when the message is empty.

    Database errors carry DETAIL/HINT/CONTEXT lines after the first; a one-line
    message for the user keeps only the first. With `problems=N`, an
    `OperationInvalid` (whose message alone rarely says what is wrong) adds the
    first line of its first N problems, and how many more there are:

        first_line(exc, problems=3)  # 'migration does not fit: table t is missing; ...'
    """
    text = (exc.message if isinstance(exc, ZdmigrateError) else str(exc)).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    listed = exc.problems if isinstance(exc, OperationInvalid) and problems > 0 else []
    if listed:
        line += ": " + "; ".join(p.splitlines()[0] for p in listed[:problems])
        if len(listed) > problems:
            line += f" (and {len(listed) - problems} more)"
    return line
