"""Diagnostics about a revision as a whole: it could not be linted, or its SQL depends on data.

They are not rules (they look at no statement, so they have no SQL examples)
but they are reported, configured (``disable``, ``severity``) and suppressed
(``# zdmigrate: ignore[revision-not-linted] reason`` anywhere in the revision
file) by their id, like rules. docs/lint.md documents them.
"""

from __future__ import annotations

from zdmigrate.lint._violation import Severity

REVISION_NOT_LINTED = "revision-not-linted"
DATA_DEPENDENT_SQL = "data-dependent-sql"
PHASE_WITHOUT_ROLLBACK = "phase-without-rollback"

DIAGNOSTICS: dict[str, Severity] = {
    REVISION_NOT_LINTED: Severity.ERROR,
    DATA_DEPENDENT_SQL: Severity.WARNING,
    PHASE_WITHOUT_ROLLBACK: Severity.WARNING,
}


def no_rollback_message(function: str) -> str:
    return (f"{function}() has no rollback_{function}(): `zdmigrate phase rollback` will "
            f"refuse to undo this phase once it ran. Write rollback_{function}(ctx) (use IF "
            "EXISTS: it may run after an interrupted phase), or suppress with "
            f"`# zdmigrate: ignore[{PHASE_WITHOUT_ROLLBACK}] reason`.")


def what_to_do(cause: str) -> str:
    """One line saying how to get this revision linted, from the cause of the failure."""
    if "ModuleNotFoundError" in cause or "ImportError" in cause:
        advice = ("install the package it imports in this environment, or set PYTHONPATH "
                  "to the project's root (or `prepend_sys_path` in alembic.ini)")
    elif "get_bind" in cause or "context" in cause.lower() or "current_app" in cause:
        advice = "use --env to load the project's env.py first"
    else:
        advice = ("use --env (env.py sets things up), or [tool.zdmigrate.lint] preload = "
                  "[\"plugin\"] for Alembic plugins")
    return (f"{advice}; or suppress with `# zdmigrate: ignore[{REVISION_NOT_LINTED}] reason` "
            "in the file")


def not_linted_message(cause: str, *, env_py: bool = False) -> str:
    cause = cause.rstrip(". ")
    if env_py:
        return (f"env.py could not run offline: {cause}. The revisions were linted without it "
                "(plugins it imports are missing). What to do: make env.py's offline branch "
                "work without the running app, or lint without --env and list plugin modules "
                f"in [tool.zdmigrate.lint] preload; or disable {REVISION_NOT_LINTED} for this run.")
    return (f"this revision was not linted: {cause}. Nothing in it was checked. "
            f"What to do: {what_to_do(cause)}.")


def data_read_message() -> str:
    return ("this revision reads query results; lint renders offline, where every read "
            "sees no rows, so the SQL after the read may differ on a real database. "
            f"Safe way: review that SQL by hand, then `# zdmigrate: ignore[{DATA_DEPENDENT_SQL}] "
            "reason` on the read.")
