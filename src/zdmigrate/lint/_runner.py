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
from typing import TYPE_CHECKING, Any, Protocol

from zdmigrate.errors import LintInternalError
from zdmigrate.lint._config import LintConfig
from zdmigrate.lint._parse import Statement, gc_paused, parse
from zdmigrate.lint._state import LintState
from zdmigrate.lint._suppress import Suppression, python_suppressions, sql_suppressions
from zdmigrate.lint._violation import Severity, Violation, sort_key
from zdmigrate.lint.rules import Rule, all_rules
from zdmigrate.phases import WORK_PHASES, Phase

if TYPE_CHECKING:
    from zdmigrate.steps import Step

DEFAULT_PG_VERSION = 15
#: a phase's value without the enum's descriptor (per violation)
_PHASE_VALUES = {phase: phase.value for phase in Phase}


class RendersPhases(Protocol):
    """What `lint_migration` needs of a migration (zdmigrate.migration.Migration)."""

    id: str
    path: Any

    def emit(self, phase: Phase, direction: str, sink: Any) -> None: ...


class _Run:
    """One lint run: active rules by node type, the memory, the violations found."""

    def __init__(self, config: Mapping[str, Any] | LintConfig | None, pg_version: int | None) -> None:
        self.config = LintConfig.from_mapping(config)
        self.pg_version = pg_version or self.config.pg_version or DEFAULT_PG_VERSION
        self.severities = self.config.severities
        self.violations: list[Violation] = []
        #: the table each violation is about (parallel to `violations`), for folding
        self.tables: list[str | None] = []
        #: table -> number of violations before its (last) DROP TABLE
        self.drops: dict[str, int] = {}
        self.read_reported = False
        self.state = LintState(pg_version=self.pg_version)
        #: (dispatch list, ALTER TABLE subtypes or DROP object type) -> the rules that look at it
        self._sub_rules: dict[tuple[int, frozenset[str] | str | None], list[Rule]] = {}

    def rules_for(self, phase: Phase, text: str) -> dict[str, list[Rule]]:
        """The active rules of `phase` by node type, less those that cannot flag `text`."""
        skipped = frozenset(rule for rule in self.config.prefiltered[phase]
                            if not rule.could_flag(text))
        return self.config.dispatch_without(phase, skipped)

    def rules_for_alter(self, rules: list[Rule], stmt: Statement) -> list[Rule]:
        """Of `rules`, those that look at a command this ALTER TABLE has (remembered per mix)."""
        subtypes = _alter_subtypes(stmt)
        key = (id(rules), subtypes)
        found = self._sub_rules.get(key)
        if found is None:
            found = self._sub_rules[key] = [
                rule for rule in rules
                if not rule.alter_subtypes or not rule.alter_subtypes.isdisjoint(subtypes)
            ]
        return found

    def rules_for_drop(self, rules: list[Rule], stmt: Statement) -> list[Rule]:
        """Of `rules`, those that look at the type of object this DROP drops (remembered)."""
        remove_type = stmt.node.get("removeType")
        key = (id(rules), remove_type)
        found = self._sub_rules.get(key)
        if found is None:
            found = self._sub_rules[key] = [
                rule for rule in rules if not rule.remove_types or remove_type in rule.remove_types
            ]
        return found

    def finishers(self, phase: Phase) -> list[Rule]:
        return self.config.finishers[phase]

    def emit(
        self, rule_id: str, message: str, *, path: str | None, line: int | None,
        phase: Phase | None, statement: str = "", table: str | None = None,
    ) -> None:
        severity = self.severities.get(rule_id)
        if severity is None:  # the rule is not active
            return
        self.violations.append(
            Violation(rule_id, severity, message, path, line,
                      _PHASE_VALUES[phase] if phase else None, statement)
        )
        self.tables.append(table.lower() if table else None)

    def diagnose(self, diagnostic_id: str, message: str, *, path: str | None, line: int | None,
                 phase: Phase | None = None) -> None:
        """Report a `_diagnostics` diagnostic (unless the config disables it)."""
        severity = self.config.diagnostic_severity(diagnostic_id)
        if severity is not None:
            self.violations.append(Violation(diagnostic_id, severity, message, path, line,
                                             phase.value if phase else None))
            self.tables.append(None)

    def folded(self) -> list[Violation]:
        """The violations, without those on a table that the same unit then drops.

        A revision that drops an index and then its table is reported once, at
        the DROP TABLE: the findings before it on that table are noise.
        """
        if not self.drops:
            return self.violations
        keep = []
        for index, (violation, table) in enumerate(zip(self.violations, self.tables, strict=True)):
            cut = self.drops.get(table) if table else None
            if cut is not None and index < cut and violation.rule != "drop-table" \
                    and violation.rule in _FOLDABLE:
                continue
            keep.append(violation)
        return keep

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
        dispatch = self.rules_for(phase, text)

        def where(stmt_line: int) -> int:
            return fixed_line if fixed_line is not None else line_base + stmt_line

        for problem in parsed.problems:
            if report:
                self.emit("syntax-error", f"{problem.message}: the statement does not parse, "
                          "so nothing in it was checked", path=path, line=where(problem.line),
                          phase=phase, statement=problem.sql)
        outer = outer or []
        for index, stmt in enumerate(statements):
            rules = dispatch.get(stmt.kind)
            if rules:
                own = targets.get(index, ())
                if stmt.kind == "AlterTableStmt":
                    rules = self.rules_for_alter(rules, stmt)
                elif stmt.kind == "DropStmt":
                    rules = self.rules_for_drop(rules, stmt)
                for rule in rules:
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
                        if (own and _suppressed(rule.id, own)) or \
                                (outer and _suppressed(rule.id, outer)):
                            continue
                        if report:
                            self.emit(rule.id, rule.message(finding), path=path,
                                      line=where(finding.line or stmt.line), phase=phase,
                                      statement=stmt.sql, table=finding.table)
            if stmt.kind == "DropStmt" and stmt.node.get("removeType") == "OBJECT_TABLE":
                for name in _dropped_tables(stmt):
                    self.drops[name] = len(self.violations)
            state.track(stmt)
        for rule in self.finishers(phase):
            for finding in rule.finish(state):
                if report and not _suppressed(rule.id, outer):
                    self.emit(rule.id, rule.message(finding), path=path,
                              line=where(finding.line or 1), phase=phase)
        if report:
            self.report_suppressions(suppressions, path=path, phase=phase,
                                     line_of=lambda s: where(s.line))

    def report_suppressions(
        self, suppressions: Iterable[Suppression], *, path: str | None, phase: Phase | None,
        line_of: Any,
    ) -> None:
        suppressions = list(suppressions)
        if not suppressions:
            return
        from zdmigrate.lint._diagnostics import DIAGNOSTICS

        known = {**all_rules(), **DIAGNOSTICS}
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


def _dropped_tables(stmt: Statement) -> list[str]:
    from zdmigrate.lint._nodes import strings

    out = []
    for obj in stmt.node.get("objects") or ():
        names = strings((obj.get("List") or {}).get("items"))
        if names:
            out.append(names[-1].lower())
    return out


def _foldable() -> frozenset[str]:
    from zdmigrate.lint.rules import Category

    return frozenset(rid for rid, rule in all_rules().items()
                     if rule.category in (Category.DESTRUCTIVE, Category.LOCK))


_FOLDABLE = _foldable()


def _alter_subtypes(stmt: Statement) -> frozenset[str]:
    return frozenset(
        (item.get("AlterTableCmd") or {}).get("subtype", "") for item in stmt.node.get("cmds") or ()
    )


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
    # steps (and its dataclasses) only for steps: linting a .sql file never needs it
    from zdmigrate.steps import statement_needs_autocommit

    return any(statement_needs_autocommit(stmt.kind, stmt.node) for stmt in statements)


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
    with gc_paused():
        run.lint_text(text, phase=phase, path=path)
    return sorted(run.folded(), key=sort_key)


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
    return sorted(run.folded(), key=sort_key)


def lint_migration(
    migration: RendersPhases,
    phases: Iterable[Phase] | None = None,
    *,
    pg_version: int | None = None,
    config: Mapping[str, Any] | LintConfig | None = None,
    keep_going: bool = False,
    known_types: dict[tuple[str, str], Any] | None = None,
    catalog_types: Mapping[tuple[str, str], str] | None = None,
    rollbacks: bool = False,
) -> list[Violation]:
    """Lint a migration phase by phase, from its rendered steps (offline, no database).

    Every phase is rendered in order so that what an earlier phase did (a
    validated CHECK, a column's type) is known to a later one; only `phases`
    (default: all) are reported. A table counts as new (empty, so lock rules
    spare it) only within the phase that created it and until a COMMIT: the app
    writes to it from then on. A plain Alembic revision renders only expand.

    With `keep_going`, a revision whose code raises while rendering gives one
    ``revision-not-linted`` violation (at the failing line) instead of a
    MigrationFileError. `known_types` ((table, column) -> type) carries column
    types from earlier revisions and is updated; `catalog_types` gives the live
    database's types (SQL text) for columns no revision declared. With
    `rollbacks`, a phase function that `phase rollback` could not undo is a
    ``phase-without-rollback`` warning (what `zdmigrate lint` reports).
    """
    from zdmigrate import _lint_render
    from zdmigrate.errors import MigrationFileError

    wanted = set(WORK_PHASES if phases is None else phases)
    run = _Run(config, pg_version)
    if known_types is not None:
        run.state.column_types = known_types
    if catalog_types:
        run.state.catalog_types = catalog_types
    python: dict[str, list[Suppression]] = {}
    path = str(migration.path) if getattr(migration, "path", None) else None
    if path and path.endswith(".py"):
        python[path] = _read_python_suppressions(path)
    from dataclasses import replace

    mode = replace(_lint_render.active() or _lint_render.LintRendering(),
                   revision=path if path and path.endswith(".py") else None)
    with _lint_render.lint_rendering(mode):
        for phase in WORK_PHASES:
            if phase > max(wanted, default=Phase.EXPAND):
                break
            # a table created in an earlier phase has taken the app's writes since: not empty
            run.state.created_tables = set()
            items: list[Any] = []
            try:
                migration.emit(phase, "advance", items.append)
            except (MigrationFileError, SystemExit) as exc:
                if not keep_going:
                    raise
                _lint_phase(run, items, phase, report=phase in wanted, python=python)
                if isinstance(exc, SystemExit):  # upgrade() called sys.exit()
                    exc = MigrationFileError(f"rendering it called exit({exc.code!r})", path=path,
                                             line=_last_line_in(exc, path))
                not_linted(run, exc, path, python)
                break
            _lint_phase(run, items, phase, report=phase in wanted, python=python)
    if rollbacks:
        _phases_without_rollback(run, migration, wanted, python)
    if phases is None or wanted == set(WORK_PHASES):
        for file, suppressions in python.items():
            run.report_suppressions(suppressions, path=file, phase=None, line_of=lambda s: s.line)
    return sorted(run.folded(), key=sort_key)


def _phases_without_rollback(
    run: _Run, migration: Any, wanted: set[Phase], python: dict[str, list[Suppression]]
) -> None:
    """A phase function (not backfill, not contract) that `phase rollback` could not undo."""
    from zdmigrate.lint._diagnostics import PHASE_WITHOUT_ROLLBACK, no_rollback_message

    if getattr(migration, "kind", None) != "phased":
        return
    path = str(migration.path)
    for phase in sorted(wanted):
        if phase in (Phase.BACKFILL, Phase.CONTRACT) or not migration.defines(phase):
            continue
        if migration.can_roll_back(phase):
            continue
        function = getattr(migration.module, phase.function_name)
        line = function.__code__.co_firstlineno
        suppressions = python.get(path, [])
        covering = [s for s in suppressions
                    if s.covers(PHASE_WITHOUT_ROLLBACK) and line in (s.line, s.target_line)]
        for suppression in covering:
            suppression.used.add(PHASE_WITHOUT_ROLLBACK)
        if covering:
            continue
        run.diagnose(PHASE_WITHOUT_ROLLBACK, no_rollback_message(phase.function_name),
                     path=path, line=line, phase=phase)


def not_linted(run: _Run, exc: Exception, path: str | None,
               python: dict[str, list[Suppression]] | None = None) -> None:
    """Report that a revision could not be loaded or rendered (one violation, at its line)."""
    from zdmigrate.lint._diagnostics import REVISION_NOT_LINTED, not_linted_message

    where_path = getattr(exc, "path", None) or path
    line = getattr(exc, "line", None)
    cause = getattr(exc, "message", None) or str(exc)
    prefix = f"{where_path}:{line}: " if line is not None else f"{where_path}: "
    if cause.startswith(prefix):
        cause = cause[len(prefix):]
    cause = " ".join(cause.split())
    if where_path and str(where_path).endswith(".py"):
        if python is None or where_path not in python:
            suppressions = _read_python_suppressions(str(where_path))
            if python is not None:
                python[str(where_path)] = suppressions
        else:
            suppressions = python[str(where_path)]
        if _suppressed(REVISION_NOT_LINTED, suppressions):
            return
    env_py = bool(where_path) and Path(str(where_path)).name == "env.py"
    run.diagnose(REVISION_NOT_LINTED, not_linted_message(cause, env_py=env_py), path=where_path,
                 line=line or 1, phase=None)


def _last_line_in(exc: BaseException, path: str | None) -> int | None:
    """The last line of `path` in the traceback of `exc` (where the revision gave up)."""
    import os
    import traceback

    if not path:
        return None
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.abspath(frame.filename) == os.path.abspath(path):
            line = frame.lineno
    return line


def lint_unloadable(
    path: str, exc: Exception, *, config: Mapping[str, Any] | LintConfig | None = None,
) -> list[Violation]:
    """The ``revision-not-linted`` violation for a file that could not be loaded (if any)."""
    run = _Run(config, None)
    python: dict[str, list[Suppression]] = {}
    not_linted(run, exc, path, python)
    return run.violations


def _read_python_suppressions(path: str) -> list[Suppression]:
    try:
        return python_suppressions(Path(path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return []


def _lint_phase(
    run: _Run, steps: Sequence[Any], phase: Phase, *, report: bool,
    python: dict[str, list[Suppression]],
) -> None:
    from zdmigrate import _lint_render as events
    from zdmigrate.steps import SQLStep

    standalone = not python
    lines_seen: set[tuple[str, int]] = set()
    for step in steps:
        if not isinstance(step, SQLStep):
            if isinstance(step, events.TransactionBoundary):
                if step.kind == "commit":  # committed: the app may write to those tables now
                    run.state.created_tables.clear()
            elif isinstance(step, events.ColumnTypeHint):
                info = type_of(step.type_sql)
                if info is not None:
                    run.state.column_types[(step.table.lower(), step.column)] = info
            elif isinstance(step, events.IndexTableHint):
                run.state.index_tables.setdefault(step.index, step.table.lower())
            elif isinstance(step, events.DataRead) and report and not run.read_reported:
                _report_read(run, step.source, phase, python)
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


def _report_read(run: _Run, source: Any, phase: Phase,
                 python: dict[str, list[Suppression]]) -> None:
    from zdmigrate.lint._diagnostics import DATA_DEPENDENT_SQL, data_read_message

    run.read_reported = True
    path = source.path if source else None
    line = source.line if source else None
    if path and line and path.endswith(".py"):
        if path not in python:
            python[path] = _read_python_suppressions(path)
        own = [s for s in python[path] if s.target_line == line]
        if _suppressed(DATA_DEPENDENT_SQL, own):
            return
    run.diagnose(DATA_DEPENDENT_SQL, data_read_message(), path=path, line=line, phase=phase)


def type_of(type_sql: str) -> Any:
    """The `TypeInfo` of a type written in SQL (``VARCHAR(128)``), or None if it does not parse."""
    from zdmigrate.lint import _nodes as n

    parsed = parse(f"SELECT NULL::{type_sql}")
    if parsed.problems or not parsed.statements:
        return None
    targets = parsed.statements[0].node.get("targetList") or ()
    value = ((targets[0].get("ResTarget") or {}).get("val") or {}) if targets else {}
    cast = value.get("TypeCast") or {}
    return n.type_info(cast.get("typeName"))


__all__ = ["Severity", "Violation", "lint_migration", "lint_sql", "lint_steps"]
