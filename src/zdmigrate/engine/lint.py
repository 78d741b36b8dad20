"""`lint`: lint migrations, .sql files, stdin, Alembic projects and globs; offline.

Stays light: linting plain SQL must not import SQLAlchemy, Alembic or psycopg,
so everything heavy is imported where it is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from zdmigrate.config import Settings
from zdmigrate.errors import BadInput

if TYPE_CHECKING:
    from zdmigrate.lint import Violation


@dataclass
class LintResult:
    """What `lint` found, over how many files, for which PostgreSQL version."""

    violations: list[Violation]
    files_checked: int
    pg_version: int
    #: What the user should know about how the run went (e.g. the server was not reached).
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for v in self.violations if v.is_error)

    @property
    def warnings(self) -> int:
        return len(self.violations) - self.errors

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors or (strict and self.warnings))


def lint(
    settings: Settings,
    paths: Sequence[str] = (),
    *,
    phase: str | None = None,
    pg_version: int | str | None = None,
    since: str | None = None,
    stdin: TextIO | None = None,
    env: bool = False,
    freeze_loaded: bool = False,
) -> LintResult:
    """Lint migrations, .sql files, stdin (``-``), Alembic projects and globs; offline.

    Paths default to the migrations directory. `phase` limits migrations to one
    phase and says which phase plain SQL runs in (default expand). `pg_version`
    comes from the argument, else ``[tool.zdmigrate.lint] pg_version``, else the
    server's (when a database URL is set), else 15; with a database URL, the
    live column types tell a widening from a rewrite. `env` runs each Alembic
    project's env.py offline first. A revision that cannot be loaded or
    rendered is one ``revision-not-linted`` violation, and the rest is linted.
    Bad paths and configs raise BadInput (exit 2); a linter bug raises
    LintInternalError (exit 2).

    `freeze_loaded` is for a process that ends with the command (the CLI's
    entry point): once the revisions and Alembic are loaded, they are handed
    to `gc.freeze()`, so the cyclic GC stops walking them on every full pass
    while the revisions render (a few percent of a large history). A
    long-lived caller leaves it off: frozen objects are never collected.
    """
    from zdmigrate.errors import LintInternalError, ZdmigrateError
    from zdmigrate.lint import LintConfig
    from zdmigrate.lint._config import parse_pg_version
    from zdmigrate.lint_targets import collect, lint_collected
    from zdmigrate.phases import Phase

    config = LintConfig.from_mapping(settings.lint)
    the_phase = Phase.parse(phase) if phase else None
    if the_phase is Phase.PENDING:
        raise BadInput("--phase pending has no SQL; use expand ... contract")
    notes: list[str] = []
    server_version, catalog = _server_facts(settings, notes)
    version = (
        parse_pg_version(pg_version, "--pg-version") if pg_version is not None
        else config.pg_version or server_version or 15
    )
    targets = collect(paths, default_dir=settings.migrations, stdin=stdin,
                      since=since if since is not None else config.since, config=config, env=env)
    if freeze_loaded and targets.migrations:
        import gc

        gc.freeze()
    try:
        found = lint_collected(targets, phase=the_phase, pg_version=version, config=config,
                               catalog_types=catalog)
    except ZdmigrateError:
        raise
    except Exception as exc:  # a linter bug must not look like a clean run or a traceback
        raise LintInternalError(
            f"internal error in the linter: {type(exc).__name__}: {exc}",
            hint="this is a zdmigrate bug; please report it with the file being linted",
        ) from exc
    return LintResult(found, targets.files, version, notes)


def _server_facts(
    settings: Settings, notes: list[str]
) -> tuple[int | None, dict[tuple[str, str], str] | None]:
    """With a database URL: the server's major version and its column types (for lint).

    Linting needs no database: a URL in the environment that points nowhere (a
    database not created yet) must not fail the lint; it lints offline, with a note.
    """
    if not settings.database_url:
        return None, None
    from zdmigrate import db  # psycopg: only when a database URL asks for the server's facts
    from zdmigrate.errors import OperationalError, first_line
    from zdmigrate.lint_targets import catalog_column_types

    try:
        with db.connect(settings, application_name="zdmigrate lint") as conn:
            return db.server_major(conn), catalog_column_types(conn)
    except OperationalError as exc:
        notes.append(
            f"note: linting offline for PostgreSQL 15: the database could not be reached "
            f"({first_line(exc)}); pass --pg-version N to choose the version"
        )
        return None, None
