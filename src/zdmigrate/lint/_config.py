"""Lint settings from ``[tool.zdmigrate.lint]``: which rules run, their severity, pg_version, since.

    [tool.zdmigrate.lint]
    pg_version = 14
    enable = ["hygiene"]            # opt-in rules, by id or category
    disable = ["drop-index"]        # by id or category
    severity = { "prefer-text" = "error", "identifier-too-long" = "warning" }
    since = "0007_orders"           # skip migrations up to and including this revision
    preload = ["alembic_postgresql_enum"]  # modules imported before revisions (Alembic plugins)

Unknown keys, rule ids or severities are a ConfigError (exit 2), so a typo never
silently turns a rule off.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from zdmigrate.errors import ConfigError
from zdmigrate.lint._diagnostics import DIAGNOSTICS
from zdmigrate.lint._violation import Severity
from zdmigrate.lint.rules import Category, Rule, all_rules
from zdmigrate.phases import Phase

KEYS = ("pg_version", "enable", "disable", "severity", "since", "preload")
_CATEGORIES = {c.value for c in Category}


@dataclass(frozen=True)
class LintConfig:
    """``[tool.zdmigrate.lint]``: version, rules on and off, severities, since, preload."""

    pg_version: int | None = None
    enable: frozenset[str] = frozenset()
    disable: frozenset[str] = frozenset()
    severity: Mapping[str, Severity] = field(default_factory=dict)
    since: str | None = None
    preload: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | LintConfig | None) -> LintConfig:
        if isinstance(data, LintConfig):
            return data
        if not data:
            return _DEFAULT
        where = "[tool.zdmigrate.lint]"
        unknown = [k for k in data if k.replace("-", "_") not in KEYS]
        if unknown:
            raise ConfigError(
                f"{where} has unknown key(s) {', '.join(map(repr, unknown))}",
                hint="known keys: " + ", ".join(KEYS),
            )
        values = {k.replace("-", "_"): v for k, v in data.items()}
        pg = values.get("pg_version")
        if pg is not None:
            pg = parse_pg_version(pg, f"{where} pg_version")
        severity: dict[str, Severity] = {}
        raw_sev = values.get("severity") or {}
        if not isinstance(raw_sev, Mapping):
            raise ConfigError(f"{where} severity must be a table of rule id = \"error\"|\"warning\"")
        for rule_id, sev in raw_sev.items():
            _check_names([rule_id], f"{where} severity", categories=False)
            try:
                severity[rule_id] = Severity(str(sev).lower())
            except ValueError:
                raise ConfigError(
                    f"{where} severity of {rule_id!r} is {sev!r}; use \"error\" or \"warning\""
                ) from None
        since = values.get("since")
        preload = values.get("preload") or []
        if isinstance(preload, str):
            preload = [preload]
        if not isinstance(preload, (list, tuple)) or not all(
            isinstance(m, str) and m.replace(".", "").replace("_", "").isalnum() for m in preload
        ):
            raise ConfigError(f"{where} preload must be a list of module names, like "
                              "[\"alembic_postgresql_enum\"]")
        return cls(
            pg_version=pg,
            enable=frozenset(_name_list(values.get("enable"), f"{where} enable")),
            disable=frozenset(_name_list(values.get("disable"), f"{where} disable")),
            severity=severity,
            since=None if since in (None, "") else str(since),
            preload=tuple(preload),
        )

    def with_(self, **changes: Any) -> LintConfig:
        from dataclasses import replace

        return replace(self, **changes)

    @cached_property
    def active_rules(self) -> dict[str, Rule]:
        """The rules this config runs, by id (computed once per config)."""
        return {rid: rule for rid, rule in all_rules().items() if self.is_active(rule)}

    @cached_property
    def severities(self) -> dict[str, Severity]:
        """The severity of each rule this config runs, by id (computed once per config)."""
        return {rid: self.severity_of(rule) for rid, rule in self.active_rules.items()}

    @cached_property
    def dispatch(self) -> dict[Phase, dict[str, list[Rule]]]:
        """Per phase, the active rules by the node type they look at."""
        table: dict[Phase, dict[str, list[Rule]]] = {}
        for phase in Phase:
            by_kind: dict[str, list[Rule]] = {}
            for rule in self.active_rules.values():
                if rule.applies_in(phase):
                    for kind in rule.targets:
                        by_kind.setdefault(kind, []).append(rule)
            table[phase] = by_kind
        return table

    def dispatch_without(self, phase: Phase, skipped: frozenset[Rule]) -> dict[str, list[Rule]]:
        """`dispatch` of `phase` less the `skipped` rules (remembered: asked per text)."""
        if not skipped:
            return self.dispatch[phase]
        found = self._dispatch_without.get((phase, skipped))
        if found is None:
            found = self._dispatch_without[(phase, skipped)] = {
                kind: [rule for rule in rules if rule not in skipped]
                for kind, rules in self.dispatch[phase].items()
            }
        return found

    @cached_property
    def _dispatch_without(self) -> dict[tuple[Phase, frozenset[Rule]], dict[str, list[Rule]]]:
        return {}

    @cached_property
    def prefiltered(self) -> dict[Phase, list[Rule]]:
        """Per phase, the active rules with a pre-filter on a whole text (`Rule.could_flag`)."""
        return {
            phase: [r for r in self.active_rules.values()
                    if r.applies_in(phase) and type(r).could_flag is not Rule.could_flag]
            for phase in Phase
        }

    @cached_property
    def finishers(self) -> dict[Phase, list[Rule]]:
        return {
            phase: [r for r in self.active_rules.values()
                    if r.applies_in(phase) and type(r).finish is not Rule.finish]
            for phase in Phase
        }

    def is_active(self, rule: Rule) -> bool:
        names = {rule.id, rule.category.value, "all"}
        if names & self.disable:
            return False
        return rule.enabled_by_default or bool(names & self.enable)

    def severity_of(self, rule: Rule) -> Severity:
        return self.severity.get(rule.id, rule.severity)

    def diagnostic_severity(self, diagnostic_id: str) -> Severity | None:
        """The severity of a diagnostic (`_diagnostics`), None when it is disabled."""
        if {diagnostic_id, "all"} & self.disable:
            return None
        return self.severity.get(diagnostic_id, DIAGNOSTICS[diagnostic_id])


_DEFAULT = LintConfig()


def parse_pg_version(value: Any, what: str = "pg_version") -> int:
    """A PostgreSQL major version from 15, "15", "15.4" or a server_version_num 150004."""
    text = str(value).strip()
    try:
        number = int(float(text)) if "." in text else int(text)
    except ValueError:
        raise ConfigError(f"{what}: {value!r} is not a PostgreSQL version", hint="e.g. 15") from None
    if number >= 10000:  # server_version_num
        number //= 10000
    if not 9 <= number <= 99:
        raise ConfigError(f"{what}: {value!r} is not a PostgreSQL major version (9..99)")
    return number


def _name_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable):
        raise ConfigError(f"{what} must be a list of rule ids or categories")
    names = [str(v) for v in value]
    _check_names(names, what, categories=True)
    return names


def _check_names(names: Iterable[str], what: str, *, categories: bool) -> None:
    known = all_rules()
    for name in names:
        if name in known or name in DIAGNOSTICS or (categories and (name in _CATEGORIES or name == "all")):
            continue
        raise ConfigError(
            f"{what}: unknown rule {name!r}",
            hint="`zdmigrate lint --list-rules` lists them"
            + (f"; categories: {', '.join(sorted(_CATEGORIES))}, all" if categories else ""),
        )
