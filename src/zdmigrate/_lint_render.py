"""Rendering for the linter: what a revision tells lint besides its SQL (boundaries, old types, reads).

Only `zdmigrate lint` turns this mode on (`lint_rendering`); the engine never
sees it. In it, an offline Alembic context also sends `RenderEvent`s to the
sink, in order with the steps:

- `TransactionBoundary`: ``op.get_bind().commit()``, the COMMIT/BEGIN that
  ``op.get_context().autocommit_block()`` writes, ``op.execute("COMMIT")``;
- `ColumnTypeHint`: the ``existing_type`` given to ``op.alter_column``, so a
  widening is not mistaken for a rewrite;
- `DataRead`: the revision read a query result. Offline there is no data:
  every read sees no rows (``scalar()``/``scalar_one()`` give None), so SQL
  written after it may differ on a real database.

``op.get_bind()`` is an `OfflineBind`: ``execute`` renders the statement as a
step and returns an empty result instead of failing.
"""

from __future__ import annotations

import contextvars
import os
import re
import sysconfig
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zdmigrate.steps import Source

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext


@dataclass(frozen=True)
class TransactionBoundary:
    """The revision ends its transaction here (COMMIT) or opens one (BEGIN)."""

    kind: str  # "commit" or "begin"
    source: Source | None


@dataclass(frozen=True)
class ColumnTypeHint:
    """The type a column had before this ALTER, as the revision declared it (SQL text)."""

    table: str
    column: str
    type_sql: str
    source: Source | None


@dataclass(frozen=True)
class DataRead:
    """The revision read the result of a query; offline, it saw no rows."""

    source: Source | None


@dataclass(frozen=True)
class IndexTableHint:
    """``op.drop_index(name, table_name=...)`` says which table an index belongs to."""

    index: str
    table: str


RenderEvent = TransactionBoundary | ColumnTypeHint | DataRead | IndexTableHint


@dataclass
class LintRendering:
    """The lint render mode: extra library folders for call sites, env.py's context if any."""

    library_folders: tuple[str, ...] = ()
    env_context: MigrationContext | None = None
    #: the revision file being rendered: a step is reported at its line that led to it
    revision: str | None = None
    #: what renders of one run share (the offline context), kept across `replace`
    shared: dict[str, Any] = field(default_factory=dict)


_MODE: contextvars.ContextVar[LintRendering | None] = contextvars.ContextVar(
    "zdmigrate_lint_rendering", default=None
)


def active() -> LintRendering | None:
    return _MODE.get()


@contextmanager
def lint_rendering(mode: LintRendering) -> Iterator[LintRendering]:
    """Render in lint mode inside the block (see the module docstring)."""
    token = _MODE.set(mode)
    try:
        yield mode
    finally:
        _MODE.reset(token)


def third_party_folders(preload: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Folders whose frames are not call sites: installed packages and preloaded plugin modules.

    A finding raised inside plugin code is then reported at the revision's line
    that called the plugin, where a suppression comment can reach it.
    """
    import sys

    folders = []
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            folders.append(os.path.abspath(path) + os.sep)
    for name in preload:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path:
            base = os.path.abspath(path)
            if os.path.basename(base) == "__init__.py":
                base = os.path.dirname(base) + os.sep
            folders.append(base)
    return tuple(dict.fromkeys(folders))


_TRANSACTION_WORD = re.compile(r"^\s*(BEGIN|COMMIT|END|START\s+TRANSACTION)\s*;?\s*$", re.I)


def transaction_word(sql: str) -> str | None:
    """``commit``/``begin`` when `sql` is only a bare COMMIT/END/BEGIN, else None."""
    m = _TRANSACTION_WORD.match(sql)
    if m is None:
        return None
    return "begin" if m.group(1).upper().startswith(("BEGIN", "START")) else "commit"


class EmptyResult:
    """The result of a query run offline: no rows. Every read is reported as a `DataRead`."""

    rowcount = 0
    inserted_primary_key = None
    returns_rows = True

    def __init__(self, on_read: Callable[[], None]) -> None:
        self._on_read = on_read

    def _read(self, value: Any) -> Any:
        self._on_read()
        return value

    def fetchall(self) -> list[Any]:
        return self._read([])  # type: ignore[no-any-return]

    def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._read([])  # type: ignore[no-any-return]

    def all(self) -> list[Any]:
        return self._read([])  # type: ignore[no-any-return]

    def fetchone(self) -> None:
        return self._read(None)  # type: ignore[no-any-return]

    first = one_or_none = scalar = scalar_one = scalar_one_or_none = one = fetchone

    def scalars(self, *args: Any) -> EmptyResult:
        return self

    def mappings(self) -> EmptyResult:
        return self

    def keys(self) -> list[str]:
        return []

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        self._on_read()
        return iter(())


class OfflineBind:
    """What ``op.get_bind()`` returns when linting: renders statements, commits are boundaries."""

    def __init__(self, context: MigrationContext, mock: Any, emit: Callable[[Any], None],
                 source_of: Callable[[], Source | None]) -> None:
        self._context = context
        self._mock = mock
        self._emit = emit
        self._source_of = source_of

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mock, name)

    def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> EmptyResult:
        source = self._source_of()
        for params in parameters if isinstance(parameters, list) else [parameters]:
            bound = statement
            if isinstance(params, dict) and params and hasattr(statement, "bindparams"):
                bound = statement.bindparams(**params)
            elif isinstance(params, dict) and params and hasattr(statement, "params"):
                bound = statement.params(params)
            self._context.impl.execute(bound)
        return EmptyResult(lambda: self._emit(DataRead(source)))

    def exec_driver_sql(self, statement: str, parameters: Any = None, **kwargs: Any) -> EmptyResult:
        from sqlalchemy import text

        return self.execute(text(statement))

    def scalar(self, statement: Any, parameters: Any = None, **kwargs: Any) -> None:
        self.execute(statement, parameters).scalar()

    def scalars(self, statement: Any, parameters: Any = None, **kwargs: Any) -> EmptyResult:
        return self.execute(statement, parameters).scalars()

    def commit(self) -> None:
        self._emit(TransactionBoundary("commit", self._source_of()))

    def rollback(self) -> None:
        self._emit(TransactionBoundary("commit", self._source_of()))

    def begin(self) -> _OfflineTransaction:
        return _OfflineTransaction(self)

    begin_nested = begin

    def in_transaction(self) -> bool:
        return True

    def close(self) -> None:
        pass


class _OfflineTransaction:
    def __init__(self, bind: OfflineBind) -> None:
        self._bind = bind

    def __enter__(self) -> _OfflineTransaction:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def commit(self) -> None:
        self._bind.commit()

    def rollback(self) -> None:
        self._bind.rollback()

    def close(self) -> None:
        pass


def install(context: MigrationContext, emit: Callable[[Any], None],
            source_of: Callable[[], Source | None]) -> None:
    """Give an offline Alembic context the lint behaviour: OfflineBind, existing_type hints."""
    impl = context.impl
    mock = getattr(context.connection, "_mock", context.connection)
    bind = OfflineBind(context, mock, emit, source_of)
    context.connection = bind  # type: ignore[assignment]
    impl.connection = bind  # type: ignore[assignment]
    original = getattr(impl.alter_column, "__wrapped_by_zdmigrate__", impl.alter_column)

    def alter_column(table_name: str, column_name: str, *args: Any, **kw: Any) -> Any:
        existing = kw.get("existing_type")
        if existing is not None and kw.get("type_") is not None:
            try:
                type_sql = existing.compile(dialect=context.dialect) if hasattr(existing, "compile") \
                    else str(existing)
            except Exception:  # a type this dialect cannot render: lint without the hint
                type_sql = None
            if type_sql:
                emit(ColumnTypeHint(table_name, column_name, str(type_sql), source_of()))
        return original(table_name, column_name, *args, **kw)

    alter_column.__wrapped_by_zdmigrate__ = original  # type: ignore[attr-defined]
    impl.alter_column = alter_column  # type: ignore[method-assign]
    original_drop_index = getattr(impl.drop_index, "__wrapped_by_zdmigrate__", impl.drop_index)

    def drop_index(index: Any, **kw: Any) -> Any:
        table = getattr(getattr(index, "table", None), "name", None)
        if table and getattr(index, "name", None):
            emit(IndexTableHint(str(index.name), str(table)))
        return original_drop_index(index, **kw)

    drop_index.__wrapped_by_zdmigrate__ = original_drop_index  # type: ignore[attr-defined]
    impl.drop_index = drop_index  # type: ignore[method-assign]
