"""invalid-suppression: a `zdmigrate: ignore[...]` comment without a reason or with an unknown rule."""

from __future__ import annotations

from zdmigrate.lint.rules._base import Category, Example, Rule


class InvalidSuppression(Rule):
    id = "invalid-suppression"
    category = Category.CORRECTNESS
    summary = "a suppression comment without a reason, or naming an unknown rule"
    why = "A suppression must say why the statement is safe here, so reviewers can judge it."
    fix = "write `-- zdmigrate: ignore[rule-id] the reason` (in Python: `# zdmigrate: ...`)."
    exempt_new_tables = False
    bad = (Example("-- zdmigrate: ignore[drop-column]\nALTER TABLE users DROP COLUMN legacy;"),)
    good = (
        Example("-- zdmigrate: ignore[drop-column] no app version ever read this column\n"
                "ALTER TABLE users DROP COLUMN legacy;"),
    )
