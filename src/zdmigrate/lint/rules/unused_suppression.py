"""unused-suppression: a suppression comment that silenced nothing."""

from __future__ import annotations

from zdmigrate.lint._violation import Severity
from zdmigrate.lint.rules._base import Category, Example, Rule


class UnusedSuppression(Rule):
    id = "unused-suppression"
    category = Category.CORRECTNESS
    default_severity = Severity.WARNING
    summary = "a suppression comment that silenced no violation"
    why = "A stale suppression would silently hide a real problem added to that statement later."
    fix = "remove the comment."
    exempt_new_tables = False
    bad = (Example("-- zdmigrate: ignore[drop-column] legacy is unused\n"
                   "ALTER TABLE users ADD COLUMN note text;"),)
    good = (Example("ALTER TABLE users ADD COLUMN note text;"),)
