"""GitHub Actions workflow commands: one annotation per reason, then a summary line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zdmigrate.gate import GateAnswer


def gate(answer: GateAnswer) -> str:
    """The gate's answer: an error per blocker, a warning per warning, a notice per unchecked."""
    lines = []
    for level, items in (("error", answer.blockers), ("warning", answer.warnings)):
        for b in items:
            props: dict[str, str] = {}
            if b.details.get("path"):
                props["file"] = str(b.details["path"])
                if b.details.get("line") is not None:
                    props["line"] = str(b.details["line"])
            props["title"] = f"zdmigrate gate: {b.check}"
            lines.append(f"::{level} {_gh_props(props)}::{_gh_escape(b.message)}")
    for note in answer.not_checked:
        title = _gh_props({"title": "zdmigrate gate: not checked"})
        lines.append(f"::notice {title}::{_gh_escape(note)}")
    n = len(answer.blockers)
    verdict = "may go out" if answer.allowed else f"may NOT go out ({n} reason{'s' if n != 1 else ''})"
    lines.append(f"zdmigrate gate: {answer.app} {answer.version} {verdict}")
    return "\n".join(lines)


def _gh_escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_props(props: Mapping[str, str]) -> str:
    return ",".join(
        f"{k}={_gh_escape(v).replace(':', '%3A').replace(',', '%2C')}" for k, v in props.items()
    )
