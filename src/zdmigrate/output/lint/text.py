"""The text reporter: one block per violation, `path:line: severity [rule]`, then the message."""

from __future__ import annotations

from collections.abc import Sequence

from zdmigrate.lint._violation import Severity, Violation

_RED, _YELLOW, _BOLD, _DIM, _RESET = "\033[31m", "\033[33m", "\033[1m", "\033[2m", "\033[0m"


def _snippet(sql: str, limit: int = 160) -> str:
    one_line = " ".join(sql.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 3] + "..."


def render(violations: Sequence[Violation], *, files_checked: int = 0, color: bool = False) -> str:
    def paint(code: str, s: str) -> str:
        return f"{code}{s}{_RESET}" if color else s

    lines: list[str] = []
    for v in violations:
        sev = paint(_RED if v.is_error else _YELLOW, v.severity.value)
        phase = f" ({v.phase})" if v.phase else ""
        lines.append(f"{paint(_BOLD, v.location)}: {sev} [{v.rule}]{phase}")
        lines.append("  " + v.message)
        if v.statement:
            lines.append(paint(_DIM, "  > " + _snippet(v.statement)))
        lines.append("")
    errors = sum(1 for v in violations if v.severity is Severity.ERROR)
    warnings = len(violations) - errors
    checked = f" in {files_checked} file(s)" if files_checked else ""
    summary = f"{errors} error(s), {warnings} warning(s){checked}"
    lines.append(paint(_RED if errors else _BOLD, summary) if violations else f"no problems{checked}")
    return "\n".join(lines)
