"""Suppression comments: ``-- zdmigrate: ignore[rule-id] reason`` (SQL), ``# zdmigrate: ...`` (Python).

A suppression silences the listed rules (comma-separated) on the next
statement. The reason is required: a suppression without one, or naming an
unknown rule, is itself an `invalid-suppression` error. A suppression that
silenced nothing is reported as `unused-suppression`, so stale ones do not pile
up.

In SQL the next statement is the first one that starts after the comment. In
Python it is the call on the same line (a trailing comment) or on the next line
of code (a comment on a line of its own).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SQL = re.compile(r"--[ \t]*zdmigrate:[ \t]*ignore\[([^\]\n]*)\][ \t]*([^\n]*)")
_PY = re.compile(r"#[ \t]*zdmigrate:[ \t]*ignore\[([^\]\n]*)\][ \t]*([^\n]*)")
MARKER = "zdmigrate:"


@dataclass
class Suppression:
    """One ``zdmigrate: ignore[...]`` comment: the rules, the reason, where, what it silenced."""

    rules: tuple[str, ...]
    reason: str
    line: int  # 1-based line of the comment
    offset: int = 0  # byte offset of the comment (SQL) for finding the next statement
    target_line: int | None = None  # Python: the code line it applies to
    used: set[str] = field(default_factory=set)

    def covers(self, rule_id: str) -> bool:
        return rule_id in self.rules


def _parse_ids(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def sql_suppressions(text: str) -> list[Suppression]:
    if MARKER not in text:
        return []
    out = []
    for m in _SQL.finditer(text):
        prefix = text[: m.start()]
        out.append(
            Suppression(
                _parse_ids(m.group(1)),
                m.group(2).strip(),
                prefix.count("\n") + 1,
                offset=len(prefix.encode("utf-8", "surrogatepass")),
            )
        )
    return out


def python_suppressions(source: str) -> list[Suppression]:
    if MARKER not in source:
        return []
    lines = source.splitlines()
    out = []
    for index, line in enumerate(lines):
        m = _PY.search(line)
        if not m:
            continue
        number = index + 1
        target: int | None = number
        if not line[: m.start()].strip():
            target = None
            for later in range(index + 1, len(lines)):
                stripped = lines[later].strip()
                if stripped and not stripped.startswith("#"):
                    target = later + 1
                    break
        out.append(Suppression(_parse_ids(m.group(1)), m.group(2).strip(), number, target_line=target))
    return out
