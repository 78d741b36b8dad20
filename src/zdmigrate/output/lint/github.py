"""The github reporter: workflow commands (``::error file=...,line=...::``) that annotate a PR."""

from __future__ import annotations

from collections.abc import Sequence

from zdmigrate.lint._violation import Violation


def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def render(violations: Sequence[Violation]) -> str:
    lines = []
    for v in violations:
        props = []
        if v.path:
            props.append(f"file={_escape_property(v.path)}")
        if v.line is not None:
            props.append(f"line={v.line}")
        props.append(f"title={_escape_property('zdmigrate ' + v.rule)}")
        level = "error" if v.is_error else "warning"
        phase = f" (phase {v.phase})" if v.phase else ""
        lines.append(f"::{level} {','.join(props)}::{_escape_data(v.message + phase)}")
    return "\n".join(lines)
