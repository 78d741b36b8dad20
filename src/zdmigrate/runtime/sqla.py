"""SQLAlchemy helpers: the version schemas on every pooled connection; `DualWrite` helpers.

Importing this module imports SQLAlchemy; ``zdmigrate.runtime`` itself does not.

Core::

    stmt = insert(users).values(write_values(dw, {users.c.name: "Ann"}))
    rows = conn.execute(select(users.c.id, read_column(dw, users.c.name)))

Renames through views (``RenameColumn(..., mode="view")``): one line after
creating the Engine puts the version schemas this app version needs first on
the search_path of every pooled connection::

    use_search_path(engine, rt)

ORM (one line next to the model)::

    mirror(User, rt.dual_write("0002_rename_users_name", {"name": "full_name"}))

`mirror` copies the changed attribute to its other shape in ``before_insert`` and
``before_update`` mapper events, so ``user.name = "Ann"`` writes both columns
while both exist. If the model does not map the new column yet, `mirror` adds
it as a *deferred* column (same type as the old one): ORM queries do not select
it, and it is written only once the phase says it exists. Loading an instance
with both attributes loaded counts a shadow read.

Warning: a model with the old column mapped cannot run after `contract` (its
queries select the dropped column): deploy the version without it first, which
is what the fleet check before contract enforces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Column, event, inspect
from sqlalchemy.orm import Mapper, deferred
from sqlalchemy.orm.attributes import get_history
from sqlalchemy.sql.elements import ColumnElement

from zdmigrate.phases import Phase
from zdmigrate.runtime._dual_write import DualWrite
from zdmigrate.runtime._runtime import Runtime

_SET_SEARCH_PATH = (
    "SELECT set_config('search_path', "
    "(SELECT string_agg(quote_ident(s), ', ') FROM unnest(%(schemas)s::text[]) s) "
    "|| ', ' || %(base)s, false)"
)


def use_search_path(engine: Any, runtime: Runtime) -> None:
    """Put ``runtime.search_path()`` first on the search_path of `engine`'s connections.

    Each new DBAPI connection gets it in the ``connect`` event (before the
    dialect's own first-connect queries); a pooled connection whose list is out
    of date (a migration expanded or contracted since) is updated at checkout.
    The rest of the search_path stays what the server gave the connection.

    Warning: the SET runs in autocommit, so a pool's rollback-on-return does not
    undo it; code that itself runs ``SET search_path`` replaces it.
    """

    def apply(dbapi_connection: Any, record: Any) -> None:
        schemas = runtime.search_path()
        base = record.info.get("zdmigrate_base_search_path")
        if record.info.get("zdmigrate_search_path") == schemas and base is not None:
            return
        was_autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        try:
            cursor = dbapi_connection.cursor()
            try:
                if base is None:
                    cursor.execute("SELECT current_setting('search_path')")
                    base = cursor.fetchone()[0]
                    record.info["zdmigrate_base_search_path"] = base
                if schemas:
                    cursor.execute(_SET_SEARCH_PATH, {"schemas": schemas, "base": base})
                else:
                    cursor.execute("SELECT set_config('search_path', %(base)s, false)",
                                   {"base": base})
            finally:
                cursor.close()
        finally:
            dbapi_connection.autocommit = was_autocommit
        record.info["zdmigrate_search_path"] = schemas

    event.listen(engine, "connect", apply, insert=True)
    runtime.search_path_source = "use_search_path"

    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if record.info.get("zdmigrate_search_path") != runtime.search_path():
            apply(dbapi_connection, record)

    event.listen(engine, "checkout", on_checkout)


def read_column(dw: DualWrite, column: Any) -> Any:
    """The column object to read in place of `column` (an old column of `dw`) now."""
    name = dw.read_column(column.key)
    return column if name == column.key else _sibling(column, name)


def write_values(dw: DualWrite, values: Mapping[Any, Any]) -> dict[Any, Any]:
    """`DualWrite.write` on ``{column: value}``: returns ``{column: value}`` to write now.

    Keys may be column objects or column names (strings); the result has column
    objects of the same table for keys that were column objects.
    """
    table = None
    by_name: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(key, ColumnElement):
            table = key.table  # type: ignore[attr-defined]
            by_name[str(key.key)] = value
        else:
            by_name[str(key)] = value
    written = dw.write(by_name)
    if table is None:
        return written
    return {_column(table, name): value for name, value in written.items()}


def mirror(model: type[Any], dw: DualWrite) -> DualWrite:
    """Keep both shapes of `dw`'s columns in step on every ORM flush of `model`.

    Returns `dw`, so ``dw = mirror(User, rt.dual_write(...))`` reads well.
    """
    mapper: Mapper[Any] = inspect(model)
    for old, new in dw.columns.items():
        if old not in mapper.column_attrs:
            raise ValueError(f"mirror({model.__name__}): {old!r} is not a mapped column attribute")
        if new not in mapper.attrs:
            old_column = mapper.columns[old]
            # evaluates_none: an unset attribute is left out of INSERT, not sent as NULL
            # (before expand the column does not exist yet)
            new_column = Column(new, old_column.type.evaluates_none(), nullable=True)
            mapper.local_table.append_column(new_column)  # type: ignore[attr-defined]
            mapper.add_property(new, deferred(new_column))
    pairs = list(dw.columns.items())

    def sync(target: Any, inserting: bool) -> None:
        phase = dw.phase
        state = inspect(target)
        loaded = state.dict
        for old, new in pairs:
            old_set = old in loaded and (inserting or get_history(target, old).has_changes())
            new_set = new in loaded and (inserting or get_history(target, new).has_changes())
            if old_set and not new_set and phase is not Phase.PENDING:
                setattr(target, new, dw.to_new(old, loaded[old]))
            elif new_set and not old_set and phase is not Phase.CONTRACT:
                setattr(target, old, dw.to_old(old, loaded[new]))

    @event.listens_for(model, "before_insert", propagate=True)
    def before_insert(mapper: Any, connection: Any, target: Any) -> None:
        sync(target, True)

    @event.listens_for(model, "before_update", propagate=True)
    def before_update(mapper: Any, connection: Any, target: Any) -> None:
        sync(target, False)

    @event.listens_for(model, "load", propagate=True)
    def on_load(target: Any, context: Any) -> None:
        loaded = inspect(target).dict
        if any(old in loaded and new in loaded for old, new in pairs):
            dw.compare(loaded)

    return dw


def _sibling(column: Any, name: str) -> Any:
    return _column(column.table, name)


def _column(table: Any, name: str) -> Any:
    if name not in table.c:
        raise ValueError(
            f"table {table.name!r} has no column {name!r}: declare it in the Table "
            "(zdmigrate writes it from expand on, reads it from switch-read on)"
        )
    return table.c[name]
