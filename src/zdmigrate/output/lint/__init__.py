"""Reporters: violations as text (coloured on a terminal), json, github annotations or SARIF.

    print(render(violations, "github", files_checked=3))
"""

from __future__ import annotations

from collections.abc import Sequence

from zdmigrate.errors import BadInput
from zdmigrate.lint._violation import Violation
from zdmigrate.output.lint import github, json, sarif, text

FORMATS = ("text", "json", "github", "sarif")


def render(
    violations: Sequence[Violation], output_format: str = "text", *, files_checked: int = 0,
    color: bool = False,
) -> str:
    """The report in `output_format`; `color` only affects text."""
    if output_format == "text":
        return text.render(violations, files_checked=files_checked, color=color)
    if output_format == "json":
        return json.render(violations, files_checked=files_checked)
    if output_format == "github":
        return github.render(violations)
    if output_format == "sarif":
        return sarif.render(violations)
    raise BadInput(f"unknown lint format {output_format!r}; use one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "render"]
