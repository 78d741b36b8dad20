"""Steps: the data a phase is made of, produced by operations and phase functions.

A plan is a list of steps; only `db` and `engine` execute them. A `SQLStep` is
one SQL statement; a `BackfillStep` describes a batched data copy that the
backfill engine carries out. Every step knows where its author wrote it, so
`plan`, the linter and error messages can point at the file and line.

    >>> SQLStep("ALTER TABLE users ADD COLUMN full_name text").autocommit
    False
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Params = Mapping[str, Any] | Sequence[Any] | None


@dataclass(frozen=True)
class Source:
    """Where a step was written: a file and a 1-based line."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


#: `SQLStep.role`: the step removes something old app versions rely on (a sync or
#: fix trigger): contract needs fleet proof whatever the linter thinks of the SQL.
REMOVES_OLD_DEPENDENCY = "removes_old_dependency"
#: `SQLStep.role`: the step only touches zdmigrate's own transition scaffolding (a
#: helper CHECK, a memo function) or what old versions cannot reach: no fleet proof.
SCAFFOLDING = "scaffolding"


@dataclass(frozen=True)
class SQLStep:
    """One SQL statement.

    `autocommit` steps (CREATE INDEX CONCURRENTLY and friends) run outside a
    transaction; all others run in a short transaction of their own with
    ``SET LOCAL lock_timeout``. Leave it as None to have it detected from the SQL.
    `role` (None, `REMOVES_OLD_DEPENDENCY` or `SCAFFOLDING`) tells the fleet policy
    what the step does to old app versions when the SQL alone does not say it.
    """

    sql: str
    params: Params = None
    source: Source | None = None
    autocommit: bool = False
    description: str | None = None
    role: str | None = None

    @property
    def key(self) -> str:
        """A fingerprint of what the step does, to recognise it on a rerun."""
        payload = json.dumps([self.sql, _jsonable(self.params)], sort_keys=True, default=str)
        return _fingerprint(payload)

    def render(self) -> str:
        """The SQL with its parameters shown inline, for `plan` and logs only."""
        if self.params is None:
            return self.sql
        return f"{self.sql}  -- params: {json.dumps(_jsonable(self.params), default=str)}"


@dataclass(frozen=True)
class BackfillStep:
    """Copy old data into the new shape in batches: ``UPDATE table SET ... WHERE ...``.

    `set` maps each column to an SQL expression over the row; `where` selects the
    rows that still need the change (rows the app already fixed no longer match,
    so they are left alone). `verify` is an SQL condition that is true for a row
    whose new shape disagrees with its old one; zero such rows gate switch-read.
    """

    table: str
    set: Mapping[str, str]
    where: str | None = None
    verify: str | None = None
    schema: str | None = None
    source: Source | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None

    @property
    def key(self) -> str:
        payload = json.dumps(
            ["backfill", self.schema, self.table, dict(self.set), self.where, self.verify],
            sort_keys=True,
        )
        return _fingerprint(payload)

    @property
    def qualified_table(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table

    def render(self) -> str:
        """A readable description of the batched update, for `plan`."""
        from psycopg import sql

        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(col), sql.SQL(expr))  # type: ignore[arg-type]
            for col, expr in self.set.items()
        )
        target = (
            sql.Identifier(self.schema, self.table) if self.schema else sql.Identifier(self.table)
        )
        text = sql.SQL("UPDATE {} SET {}").format(target, assignments).as_string(None)
        if self.where:
            text += f" WHERE {self.where}"
        return f"-- backfill, in batches by primary key:\n{text}"


@dataclass(frozen=True)
class GeneratedSQLStep:
    """Statements that only the live catalog can spell out, generated when the step runs.

    `query` returns one text column: each row is one statement, run in order as a
    step of its own (CONCURRENTLY ones outside a transaction). Used where a plan
    cannot know the SQL in advance, e.g. copying whatever indexes a column has.

    Warning: a rerun after a kill generates and runs the statements again, so each
    must be idempotent (IF NOT EXISTS, IF EXISTS, or a query that generates only
    what is still missing). The linter cannot see generated SQL: it is trusted
    operation output.
    """

    query: str
    description: str
    params: Params = None
    source: Source | None = None

    @property
    def key(self) -> str:
        payload = json.dumps(["generated", self.query, _jsonable(self.params)], default=str)
        return _fingerprint(payload)

    def render(self) -> str:
        """What `plan` shows: the description and the generating query."""
        query = "\n".join("--   " + line for line in self.query.strip().splitlines())
        return f"-- generated when it runs: {comment_text(self.description)}\n-- from:\n{query}"


Step = SQLStep | BackfillStep | GeneratedSQLStep


def comment_text(text: str) -> str:
    """`text` made safe for one ``--`` comment line: a line break in a name would end the
    comment and show the rest as bare SQL, so breaks are shown escaped."""
    return (text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _fingerprint(payload: str) -> str:
    import hashlib  # not at import time: the linter imports this module and needs no hashing

    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _jsonable(params: Params) -> Any:
    if params is None:
        return None
    if isinstance(params, Mapping):
        return {str(k): v for k, v in params.items()}
    return list(params)


def split_sql(sql_text: str) -> list[tuple[str, int]]:
    """Split SQL text into statements, each with the 0-based line it starts on.

    Uses the real PostgreSQL parser (pglast), so dollar quotes, comments and
    strings are handled. Text that does not parse is returned whole, unsplit:
    the database (or the linter) will report it with its own message.
    """
    import pglast

    try:
        stmts = pglast.parse_sql(sql_text)
    except pglast.parser.ParseError:
        return [(sql_text.strip(), 0)] if sql_text.strip() else []
    encoded = sql_text.encode()
    out: list[tuple[str, int]] = []
    for raw in stmts:
        start = raw.stmt_location or 0
        length = raw.stmt_len or (len(encoded) - start)
        chunk = encoded[start : start + length].decode()
        stripped = chunk.strip()
        if not stripped:
            continue
        leading = chunk[: len(chunk) - len(chunk.lstrip())]
        line = encoded[:start].decode().count("\n") + leading.count("\n")
        out.append((stripped, line))
    return out


def needs_autocommit(sql_text: str) -> bool:
    """True for statements PostgreSQL refuses to run inside a transaction block.

    CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY, DETACH PARTITION
    CONCURRENTLY, VACUUM, CREATE/DROP DATABASE, ALTER SYSTEM.
    """
    import json

    from pglast import parser

    try:
        tree = json.loads(parser.parse_sql_json(sql_text))
    except parser.ParseError:
        return False
    for raw in tree.get("stmts", ()):
        ((kind, node),) = raw["stmt"].items()
        if statement_needs_autocommit(kind, node):
            return True
    return False


_ALWAYS_AUTOCOMMIT = frozenset({"VacuumStmt", "CreatedbStmt", "DropdbStmt", "AlterSystemStmt"})


def statement_needs_autocommit(kind: str, node: Mapping[str, Any]) -> bool:
    """`needs_autocommit` for one statement already parsed to pglast's JSON tree.

    `kind` is the node type (``"IndexStmt"``), `node` its fields. The linter
    asks this with the statements it parsed, so the rule exists once.
    """
    if kind in _ALWAYS_AUTOCOMMIT:
        return True
    if kind in ("IndexStmt", "DropStmt"):
        return bool(node.get("concurrent"))
    if kind == "ReindexStmt":
        return any((p.get("DefElem") or {}).get("defname") == "concurrently"
                   for p in node.get("params") or ())
    if kind == "AlterTableStmt":
        for item in node.get("cmds") or ():
            definition = (item.get("AlterTableCmd") or {}).get("def") or {}
            if (definition.get("PartitionCmd") or {}).get("concurrent"):
                return True
    return False


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def caller_source() -> Source | None:
    """The file and line of the nearest caller outside zdmigrate, alembic and sqlalchemy.

    That is the line in the migration file (or the user's helper) that asked
    for the step: what `plan`, the linter and error messages point at. When
    linting a revision (`zdmigrate._lint_render`), it is the revision's own line
    that led to the step (through helpers and plugins), where a suppression
    comment can reach it.
    """
    from zdmigrate import _lint_render

    mode = _lint_render.active()
    revision = mode.revision if mode is not None else None
    folders = _library_prefixes()
    frame = sys._getframe(1)
    nearest: Source | None = None
    while frame is not None:
        filename = _absolute(frame.f_code.co_filename)
        if revision is not None and filename == revision:
            return Source(filename, frame.f_lineno)
        if nearest is None and not filename.startswith("<") and not filename.startswith(folders):
            if revision is None:
                return Source(filename, frame.f_lineno)
            nearest = Source(filename, frame.f_lineno)
        frame = frame.f_back  # type: ignore[assignment]
    return nearest


_ABSOLUTE: dict[str, str] = {}


def _absolute(raw: str) -> str:
    """os.path.abspath of a code object's file name, remembered (it is asked per frame)."""
    found = _ABSOLUTE.get(raw)
    if found is None:
        found = _ABSOLUTE[raw] = raw if raw.startswith("<") else os.path.abspath(raw)
    return found


def _is_library_file(filename: str) -> bool:
    if filename.startswith("<"):
        return True
    return filename.startswith(_library_prefixes())


_LIBRARY_FOLDERS: list[str] = []
_LIBRARIES_NOT_SEEN = ["alembic", "sqlalchemy", "contextlib"]
#: (folders known, lint's extra folders) -> the tuple `str.startswith` takes; asked per step
_PREFIXES: dict[tuple[int, tuple[str, ...]], tuple[str, ...]] = {}


def _library_prefixes() -> tuple[str, ...]:
    """`_library_folders()` as a tuple, remembered while the folders stay the same."""
    from zdmigrate import _lint_render

    mode = _lint_render.active()
    extra = mode.library_folders if mode is not None else ()
    if _LIBRARIES_NOT_SEEN or not _LIBRARY_FOLDERS:
        return tuple(_library_folders())  # alembic or sqlalchemy may load later: ask again
    key = (len(_LIBRARY_FOLDERS), extra)
    found = _PREFIXES.get(key)
    if found is None:
        found = _PREFIXES[key] = tuple(_library_folders())
    return found




def _library_folders() -> list[str]:
    """zdmigrate's own folder and those of alembic and sqlalchemy, once loaded.

    When linting, also installed packages and preloaded plugins (so a plugin op
    is reported at the revision line that called it).
    """
    from zdmigrate import _lint_render

    if not _LIBRARY_FOLDERS:
        _LIBRARY_FOLDERS.append(_PACKAGE_DIR + os.sep)
    for name in _LIBRARIES_NOT_SEEN[:]:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path:
            folder = os.path.dirname(os.path.abspath(path)) + os.sep
            if name == "contextlib":
                folder = os.path.abspath(path)
            if folder not in _LIBRARY_FOLDERS:
                _LIBRARY_FOLDERS.append(folder)
            _LIBRARIES_NOT_SEEN.remove(name)
    mode = _lint_render.active()
    if mode is not None and mode.library_folders:
        return _LIBRARY_FOLDERS + [f for f in mode.library_folders if f not in _LIBRARY_FOLDERS]
    return _LIBRARY_FOLDERS
