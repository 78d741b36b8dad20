"""The command line's options as data: one table that click's commands and the lean `lint` parser read.

`cli` turns each `Option` into a click option; `_cli_lint` parses `zdmigrate
lint` with the same table without loading click. An option is written once,
here, so the two cannot drift apart (help text, names, choices).
"""

from __future__ import annotations

from typing import NamedTuple


class Option(NamedTuple):
    """One ``--name`` option: its flag, its parameter name, its help, and how its value is read."""

    flag: str  # "--pg-version"
    dest: str  # the parameter's name, "pg_version"
    help: str
    metavar: str | None = None
    is_flag: bool = False
    #: the values allowed (a choice), or () for any string
    choices: tuple[str, ...] = ()
    #: the value is a path (a `pathlib.Path`)
    path: bool = False
    #: what shell completion offers: "migration", "phase" or "rule" (None: nothing)
    complete: str | None = None


#: The global options, by name. Each command takes the ones it uses; the group takes
#: them all before the command, and a command checks what it got.
GLOBAL_OPTIONS = {
    "database_url": Option("--database-url", "database_url",
                           "PostgreSQL URL [env ZDMIGRATE_DATABASE_URL]."),
    "migrations": Option(
        "--migrations", "migrations",
        "Migrations directory [env ZDMIGRATE_MIGRATIONS; default ./migrations].", path=True),
    "state_schema": Option("--state-schema", "state_schema",
                           "Schema of zdmigrate's own tables [default zdmigrate]."),
    "lock_timeout": Option("--lock-timeout", "lock_timeout",
                           "lock_timeout of each DDL step, e.g. 2s."),
    "statement_timeout": Option("--statement-timeout", "statement_timeout",
                                "statement_timeout of each step, e.g. 30s."),
    "retry_budget": Option("--retry-budget", "retry_budget",
                           "How long to keep retrying a locked step, e.g. 60s."),
    "actor": Option("--actor", "actor", "Who is acting, for the phase log [default user@host]."),
}


def format_option(allowed: tuple[str, ...]) -> Option:
    """``--format`` with the formats a command allows."""
    return Option("--format", "output_format",
                  "Output format: " + ", ".join(allowed) + " [default text].", choices=allowed)


LINT_FORMATS = ("text", "json", "github", "sarif")
#: The global options `lint` takes.
LINT_GLOBALS = ("database_url", "migrations")
#: `lint`'s own options, in the order its help lists them (then LINT_GLOBALS and --format).
LINT_OPTIONS = (
    Option("--phase", "phase", "Lint only this phase of migrations; the phase .sql and stdin "
           "run in [default expand].", complete="phase"),
    Option("--pg-version", "pg_version", "Target PostgreSQL major version [default: lint "
           "config, else the server's with a database URL, else 15]."),
    Option("--since", "since",
           "Skip migrations up to and including REVISION (grandfathered history).",
           metavar="REVISION", complete="migration"),
    Option("--strict", "strict", "Warnings fail too (exit 1).", is_flag=True),
    Option("--env", "use_env", "Run each Alembic project's env.py offline first, as `alembic "
           "upgrade --sql` does.", is_flag=True),
    Option("--list-rules", "list_rules", "List every rule and exit.", is_flag=True),
    Option("--explain", "explain", "Explain one rule (what, why, safe way, examples).",
           metavar="RULE", complete="rule"),
)


def lint_options() -> tuple[Option, ...]:
    """Every option of `zdmigrate lint`, in help order."""
    return (*LINT_OPTIONS, *(GLOBAL_OPTIONS[name] for name in LINT_GLOBALS),
            format_option(LINT_FORMATS))
