"""The json reporter: ``{"violations": [...], "errors": n, "warnings": n, "files_checked": n}``."""

from __future__ import annotations

import json
from collections.abc import Sequence

from zdmigrate.lint._violation import Violation


def render(violations: Sequence[Violation], *, files_checked: int = 0) -> str:
    errors = sum(1 for v in violations if v.is_error)
    return json.dumps(
        {
            "violations": [v.as_dict() for v in violations],
            "errors": errors,
            "warnings": len(violations) - errors,
            "files_checked": files_checked,
        },
        indent=2,
    )
