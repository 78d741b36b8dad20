"""Which statements of a phase are destructive: the linter's answer for the fleet check.

Only the rules of the ``destructive`` category run, with their defaults, whatever
the project's lint config disables: whether proof is needed does not depend on
which warnings a team turned off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from zdmigrate.lint._config import LintConfig
from zdmigrate.lint._runner import lint_steps
from zdmigrate.lint.rules import Category
from zdmigrate.phases import Phase

if TYPE_CHECKING:
    from zdmigrate.steps import Step

#: Every category but destructive off; the destructive rules keep their defaults.
_DESTRUCTIVE_ONLY = LintConfig(
    disable=frozenset(c.value for c in Category if c is not Category.DESTRUCTIVE)
)


def destructive_statements(steps: Sequence[Step]) -> list[str]:
    """The statements of `steps` that drop, rename or rewrite what old app versions use.

    Judged as if the steps ran before contract (where such statements are not
    allowed), so a contract's own destructive statements are found.

        >>> from zdmigrate.steps import SQLStep
        >>> destructive_statements([SQLStep("ALTER TABLE users DROP COLUMN name")])
        ['ALTER TABLE users DROP COLUMN name']
    """
    violations = lint_steps(steps, Phase.EXPAND, config=_DESTRUCTIVE_ONLY)
    return [v.statement for v in violations]
