"""The phase-aware migration linter: destructive DDL outside contract, lock-unsafe DDL anywhere.

Lints SQL text, the steps of a phase, or a whole migration, offline (no
database), with pglast (PostgreSQL's own parser). Linting SQL imports neither
SQLAlchemy nor Alembic.

    >>> from zdmigrate.lint import lint_sql
    >>> [v.rule for v in lint_sql("CREATE INDEX i ON orders (user_id)")]
    ['create-index-not-concurrently']
"""

from zdmigrate.lint._config import LintConfig
from zdmigrate.lint._destructive import destructive_statements
from zdmigrate.lint._runner import lint_migration, lint_sql, lint_steps
from zdmigrate.lint._violation import Severity, Violation
from zdmigrate.lint.rules import Category, Rule, all_rules, get_rule

__all__ = [
    "Category",
    "LintConfig",
    "Rule",
    "Severity",
    "Violation",
    "all_rules",
    "destructive_statements",
    "get_rule",
    "lint_migration",
    "lint_sql",
    "lint_steps",
]
