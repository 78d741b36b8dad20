"""Reporters: violations as text (coloured on a terminal), json, github annotations or SARIF.

    print(render(violations, "github", files_checked=3))
"""

from __future__ import annotations

from collections.abc import Sequence

from zdmigrate.errors import BadInput
from zdmigrate.lint._violation import Violation

FORMATS = ("text", "json", "github", "sarif")


def render(
    violations: Sequence[Violation], output_format: str = "text", *, files_checked: int = 0,
    color: bool = False,
) -> str:
    """The report in `output_format`; `color` only affects text."""
    # each reporter is imported when its format is asked for: a run prints one
    if output_format == "text":
        from zdmigrate.output.lint import text

        return text.render(violations, files_checked=files_checked, color=color)
    if output_format == "json":
        from zdmigrate.output.lint import json

        return json.render(violations, files_checked=files_checked)
    if output_format == "github":
        from zdmigrate.output.lint import github

        return github.render(violations)
    if output_format == "sarif":
        from zdmigrate.output.lint import sarif

        return sarif.render(violations)
    raise BadInput(f"unknown lint format {output_format!r}; use one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "render"]
