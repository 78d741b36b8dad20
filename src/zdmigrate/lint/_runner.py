"""Running the rules: SQL text, a phase's steps, or a whole migration to violations.

The runner owns phase policy (destructive rules are off in contract), the
configuration (enabled rules, severity overrides), suppression comments and the
mapping from a statement to where its author wrote it. Rules only say what they
found.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from zdmigrate.errors import LintInternalError
from zdmigrate.lint._config import LintConfig
from zdmigrate.lint._parse import Statement, parse
from zdmigrate.lint._state import LintState
from zdmigrate.lint._suppress import Suppression, python_suppressions, sql_suppressions
from zdmigrate.lint._violation import Severity, Violation, sort_key
from zdmigrate.lint.rules import Rule, all_rules
from zdmigrate.phases import WORK_PHASES, Phase
from zdmigrate.steps import SQLStep, Step, needs_autocommit

DEFAULT_PG_VERSION = 15


class RendersPhases(Protocol):
    """What `lint_migration` needs of a migration (zdmigrate.migration.Migration)."""

    id: str
    path: Any

    def render(self, phase: Phase) -> list[Step]: ...


class _Run:
    """One lint run: active rules by node type, the memory, the violations found."""

    def __init__(self, config: Mapping[str, Any] | LintConfig | None, pg_version: int | None) -> None:
        self.config = LintConfig.from_mapping(config)
        self.pg_version = pg_version or self.config.pg_version or DEFAULT_PG_VERSION
        self.active = self.config.active_rules
        self.violations: list[Violation] = []
        self.state = LintState(pg_version=self.pg_version)

    def rules_for(self, phase: Phase) -> dict[str, list[Rule]]:
        return self.config.dispatch[phase]

    def finishers(self, phase: Phase) -> list[Rule]:
        return self.config.finishers[phase]

    def emit(
        self, rule_id: str, message: str, *, path: str | None, line: int | None,
        phase: Phase | None, statement: str = "",
    ) -> None:
        rule = self.active.get(rule_id)
        if rule is None:
            return
        self.violations.append(
            Violation(rule_id, self.config.severity_of(rule), message, path, line,
                      phase.value if phase else None, statement)
        )

    # -- one unit: a text of SQL ------------------------------------------------

    def lint_text(
        self, text: str, *, phase: Phase, path: str | None, line_base: int = 0,
        fixed_line: int | None = None, implicit_transaction: bool = False,
        report: bool = True, outer: list[Suppression] | None = None,
    ) -> None:
        """Lint `text`. Lines are `line_base` + the line in text, or `fixed_line` for all."""
        state = self.state
        state.phase = phase
        parsed = parse(text)
        statements = parsed.statements
        if implicit_transaction and _needs_autocommit(statements):
            implicit_transaction = False
        state.begin_unit(implicit_transaction=implicit_transaction)
        suppressions = sql_suppressions(text)
        targets = _sql_targets(suppressions, statements)
        dispatch = self.rules_for(phase)

        def where(stmt_line: int) -> int:
            return fixed_line if fixed_line is not None else line_base + stmt_line

        for problem in parsed.problems:
            if report:
                self.emit("syntax-error", f"{problem.message}: the statement does not parse, "
                          "so nothing in it was checked", path=path, line=where(problem.line),
                          phase=phase, statement=problem.sql)
        for index, stmt in enumerate(statements):
            rules = dispatch.get(stmt.kind)
            if rules:
                own = targets.get(index, ())
                subtypes = _alter_subtypes(stmt) if stmt.kind == "AlterTableStmt" else None
                for rule in rules:
                    if subtypes is not None and rule.alter_subtypes and rule.alter_subtypes.isdisjoint(subtypes):
                        continue
                    try:
                        findings = list(rule.check(stmt, state))
                    except Exception as exc:  # a bug in a rule, not in the user's SQL
                        raise LintInternalError(
                            f"internal error in lint rule {rule.id} on "
                            f"{path or '<sql>'}:{where(stmt.line)}: {type(exc).__name__}: {exc}",
                            hint="this is a zdmigrate bug; please report it with the statement",
                        ) from exc
                    for finding in findings:
                        if rule.exempt_new_tables and state.is_new_table(finding.table):
                            continue
                        if _suppressed(rule.id, own) or _suppressed(rule.id, outer or ()):
                            continue
                        if report:
                            self.emit(rule.id, rule.message(finding), path=path,
                                      line=where(finding.line or stmt.line), phase=phase,
                                      statement=stmt.sql)
            state.track(stmt)
        for rule in self.finishers(phase):
            for finding in rule.finish(state):
                if report and not _suppressed(rule.id, outer or ()):
                    self.emit(rule.id, rule.message(finding), path=path,
                              line=where(finding.line or 1), phase=phase)
        if report:
            self.report_suppressions(suppressions, path=path, phase=phase,
                                     line_of=lambda s: where(s.line))

    def report_suppressions(
        self, suppressions: Iterable[Suppression], *, path: str | None, phase: Phase | None,
        line_of: Any,
    ) -> None:
        known = all_rules()
        for s in suppressions:
            line = line_of(s)
            unknown = [r for r in s.rules if r not in known]
            if not s.rules or unknown or not s.reason:
                problem = (
                    "names no rule" if not s.rules
                    else f"names unknown rule(s) {', '.join(unknown)}" if unknown
                    else "gives no reason"
                )
                self.emit("invalid-suppression",
                          f"this zdmigrate: ignore[...] comment {problem}. A suppression must "
                          "say which rule and why it is safe here. Safe way: write "
                          "`zdmigrate: ignore[rule-id] the reason`.",
                          path=path, line=line, phase=phase)
            elif not s.used:
                self.emit("unused-suppression",
                          f"the suppression of {', '.join(s.rules)} silenced nothing. A stale "
                          "suppression would hide a future problem. Safe way: remove it.",
                          path=path, line=line, phase=phase)


def _alter_subtypes(stmt: Statement) -> set[str]:
    return {
        (item.get("AlterTableCmd") or {}).get("subtype", "") for item in stmt.node.get("cmds") or ()
    }


def _suppressed(rule_id: str, suppressions: Iterable[Suppression]) -> bool:
    for s in suppressions:
        if s.covers(rule_id) and s.reason:
            s.used.add(rule_id)
            return True
    return False


def _sql_targets(
    suppressions: list[Suppression], statements: list[Statement]
) -> dict[int, list[Suppression]]:
    if not suppressions:
        return {}
    offsets = [s.offset for s in statements]
    out: dict[int, list[Suppression]] = {}
    for s in suppressions:
        index = bisect.bisect_right(offsets, s.offset)
        if index < len(statements):
            out.setdefault(index, []).append(s)
    return out


def _needs_autocommit(statements: Sequence[Statement]) -> bool:
    """Statements zdmigrate's executor runs outside a transaction: the executor's own rule."""
    return any(needs_autocommit(stmt.sql) for stmt in statements)


_PARAM = re.compile(r"%\((\w+)\)s|%s|%%")


def _with_placeholders(sql: str, params: object) -> str:
    """psycopg placeholders (%s, %(name)s) as $n so PostgreSQL's parser accepts the SQL."""
    if params is None:
        return sql
    counter = iter(range(1, 10_000))
    names: dict[str, int] = {}

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "%%":
            return "%"
        if m.group(1):
            if m.group(1) not in names:
                names[m.group(1)] = next(counter)
            return f"${names[m.group(1)]}"
        return f"${next(counter)}"

    return _PARAM.sub(repl, sql)


# -- public API ------------------------------------------------------------------


def lint_sql(
    text: str,
    *,
    path: str | None = None,
    phase: Phase = Phase.EXPAND,
    pg_version: int | None = None,
    config: Mapping[str, Any] | LintConfig | None = None,
) -> list[Violation]:
    """Lint SQL text as if it ran in `phase` (expand by default).

    `pg_version` (default: the config's ``pg_version``, else 15) decides
    version-dependent rules. Violations carry `path` and the SQL line.

        >>> [v.rule for v in lint_sql("ALTER TABLE users DROP COLUMN email")]
        ['drop-column']
        >>> lint_sql("ALTER TABLE users DROP COLUMN email", phase=Phase.CONTRACT)
        []
    """
    run = _Run(config, pg_version)
    run.lint_text(text, phase=phase, path=path)
    return sorted(run.violations, key=sort_key)


def lint_steps(
    steps: Sequence[Step],
    phase: Phase,
    *,
    pg_version: int | None = None,
    config: Mapping[str, Any] | LintConfig | None = None,
    created_tables: set[str] | None = None,
) -> list[Violation]:
    """Lint the steps of one phase; each violation points at its step's source (file:line).

    `created_tables` names tables created earlier in the same migration (they are
    empty, so locking them is harmless); tables this phase creates are added to
    the set, so a caller can carry it from phase to phase. BackfillSteps are not
    linted: the backfill engine batches them.
    """
    run = _Run(config, pg_version)
    if created_tables is not None:
        run.state.created_tables = created_tables
    _lint_phase(run, steps, phase, report=True, python={})
    return sorted(run.violations, key=sort_key)


def lint_migration(
    migration: RendersPhases,
    phases: Iterable[Phase] | None = None,
    *,
    pg_version: int | None = None,
    config: Mapping[str, Any] | LintConfig | None = None,
) -> list[Violation]:
    """Lint a migration phase by phase, from its rendered steps (offline, no database).

    Every phase is rendered in order so that what an earlier phase did (a
    validated CHECK, a column's type) is known to a later one; only `phases`
    (default: all) are reported. A table counts as new (empty, so lock rules
    spare it) only within the phase that created it: the app writes to it from
    then on. A plain Alembic revision renders only expand.
    """
    wanted = set(WORK_PHASES if phases is None else phases)
    run = _Run(config, pg_version)
    python: dict[str, list[Suppression]] = {}
    path = str(migration.path) if getattr(migration, "path", None) else None
    if path and path.endswith(".py"):
        python[path] = _read_python_suppressions(path)
    for phase in WORK_PHASES:
        if phase > max(wanted, default=Phase.EXPAND):
            break
        # a table created in an earlier phase has taken the app's writes since: not empty
        run.state.created_tables = set()
        _lint_phase(run, migration.render(phase), phase, report=phase in wanted, python=python)
    if phases is None or wanted == set(WORK_PHASES):
        for file, suppressions in python.items():
            run.report_suppressions(suppressions, path=file, phase=None, line_of=lambda s: s.line)
    return sorted(run.violations, key=sort_key)


def _read_python_suppressions(path: str) -> list[Suppression]:
    try:
        return python_suppressions(Path(path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return []


def _lint_phase(
    run: _Run, steps: Sequence[Step], phase: Phase, *, report: bool,
    python: dict[str, list[Suppression]],
) -> None:
    standalone = not python
    lines_seen: set[tuple[str, int]] = set()
    for step in steps:
        if not isinstance(step, SQLStep):
            continue
        source = step.source
        path = source.path if source else None
        line = source.line if source else None
        outer: list[Suppression] = []
        if path and line and path.endswith(".py"):
            if path not in python:
                python[path] = _read_python_suppressions(path)
            outer = [s for s in python[path] if s.target_line == line]
            lines_seen.add((path, line))
        run.lint_text(
            _with_placeholders(step.sql, step.params),
            phase=phase, path=path,
            fixed_line=line, line_base=0,
            implicit_transaction=not step.autocommit,
            report=report, outer=outer,
        )
    if standalone and report:
        # only this phase is known: judge only suppressions aimed at its steps
        for file, suppressions in python.items():
            mine = [s for s in suppressions if (file, s.target_line or 0) in lines_seen]
            run.report_suppressions(mine, path=file, phase=phase, line_of=lambda s: s.line)


__all__ = ["Severity", "Violation", "lint_migration", "lint_sql", "lint_steps"]
