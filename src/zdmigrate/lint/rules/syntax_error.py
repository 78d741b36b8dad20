"""syntax-error: SQL that PostgreSQL's parser rejects; nothing in it can be checked."""

from __future__ import annotations

from zdmigrate.lint.rules._base import Category, Example, Rule


class SyntaxError_(Rule):
    id = "syntax-error"
    category = Category.CORRECTNESS
    summary = "SQL that does not parse"
    why = "PostgreSQL will reject it, and the linter cannot check what it cannot parse."
    fix = "fix the statement; the message names PostgreSQL's complaint and the line."
    exempt_new_tables = False
    bad = (Example("ALTER TABEL users ADD COLUMN note text;"),)
    good = (Example("ALTER TABLE users ADD COLUMN note text;"),)
