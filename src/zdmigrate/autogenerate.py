"""Autogenerate: the app's SQLAlchemy models against the live database, as phased operations.

Alembic finds the differences (``alembic.autogenerate.compare_metadata``: we
write no differ); this module maps each one to its safe, phased zdmigrate
operation and writes the Python source of a migration file:

=====================================  ===============================================
Alembic sees                           zdmigrate writes
=====================================  ===============================================
a new table                            ``ops.CreateTable``
a new nullable column                  ``ops.AddColumn``
a new NOT NULL column                  ``ops.AddColumn(nullable=False, default=...)``
                                       with a server default, else AddColumn then
                                       ``ops.SetNotNull`` with a fill to write
a removed column                       ``ops.DropColumn`` (dropped at contract)
a column removed and one added         ``ops.RenameColumn`` when ``--rename t.a=b``
                                       says so, else DropColumn with a TODO
a type change                          ``ops.WidenColumnType`` when PostgreSQL
                                       needs no rewrite, else ``ops.ChangeColumnType``
                                       keeping the name
nullable changed                       ``ops.SetNotNull`` / ``ops.DropNotNull``
a server default changed               ``ops.SetDefault`` / ``ops.DropDefault``
a new index                            ``ops.CreateIndex`` (CONCURRENTLY)
a removed index                        ``ops.DropIndex``
a new foreign key                      ``ops.AddForeignKey`` (NOT VALID, then VALIDATE)
a new unique constraint                ``ops.AddUnique``
a removed table                        ``ops.DropTable``
=====================================  ===============================================

Nothing is ever dropped silently: a difference with no safe mapping becomes a
``# TODO`` comment in the file, and a value only a person can know (the fill
for rows old app versions leave NULL) is a placeholder that refuses to load.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zdmigrate.errors import BadInput

if TYPE_CHECKING:
    import sqlalchemy as sa

#: What a person must write where a value cannot be derived; an invalid SQL
#: expression, so the file refuses to load until it is replaced.
FILL_PLACEHOLDER = "<FILL: an SQL expression for rows old app versions write as NULL>"


@dataclass
class GeneratedOps:
    """The operations (as Python source lines) for a set of differences."""

    lines: list[str] = field(default_factory=list)
    imports: set[str] = field(default_factory=set)
    todos: list[str] = field(default_factory=list)

    def add(self, source: str, *comments: str) -> None:
        for comment in comments:
            self.lines.append(f"# {comment}")
        self.lines.append(source + ",")

    @property
    def empty(self) -> bool:
        return not any(not line.startswith("#") for line in self.lines)


def load_metadata(spec: str) -> sa.MetaData:
    """``"shop.models:Base.metadata"`` -> that MetaData; BadInput (exit 2) when it is not one."""
    import sqlalchemy as sa

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise BadInput(
            f"target_metadata {spec!r} is not 'module:attribute'",
            hint='e.g. target_metadata = "shop.models:Base.metadata" in [tool.zdmigrate]',
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # the app's own module: anything may go wrong in it
        raise BadInput(
            f"cannot import {module_name!r} for target_metadata: {type(exc).__name__}: {exc}",
            hint="run from the project's root, or set PYTHONPATH so the models import",
        ) from None
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise BadInput(f"{module_name} has no attribute {attribute!r}") from None
    if isinstance(obj, sa.MetaData):
        return obj
    metadata = getattr(obj, "metadata", None)
    if isinstance(metadata, sa.MetaData):
        return metadata
    raise BadInput(f"{spec} is a {type(obj).__name__}, not a SQLAlchemy MetaData")


def compare(connection: sa.Connection, metadata: sa.MetaData) -> list[Any]:
    """Alembic's differences between `metadata` and the database, less zdmigrate's own objects."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(
        connection,
        opts={"include_object": _include_object, "compare_type": True,
              "compare_server_default": True},
    )
    return list(compare_metadata(context, metadata))


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Skip what zdmigrate and Alembic keep for themselves (state, memos, index copies)."""
    if not reflected or name is None:
        return True
    if type_ == "table" and name == "alembic_version":
        return False
    return not (name.startswith("zdm_") or "_zdm" in name)


def operations_for(diffs: Sequence[Any], renames: Mapping[str, str] = {}) -> GeneratedOps:
    """Map Alembic's differences to zdmigrate operations; `renames` is ``{"table.old": "new"}``."""
    out = GeneratedOps()
    flat = list(_flatten(diffs))
    removed = {(d[2], d[3].name) for d in flat if d[0] == "remove_column"}
    added = {(d[2], d[3].name) for d in flat if d[0] == "add_column"}
    renamed: dict[tuple[str, str], str] = {}
    for key, new in renames.items():
        table, _, old = key.rpartition(".")
        if (table, old) not in removed or (table, new) not in added:
            raise BadInput(
                f"--rename {key}={new}: the models do not drop {key} and add {table}.{new}",
                hint="a rename is a column the database has and the models no longer have, "
                "and a new column in the same table",
            )
        renamed[(table, old)] = new
    skip_added = {(table, new) for (table, _), new in renamed.items()}
    flat = _pair_indexes(flat, renamed, out)

    def order(diff: tuple[Any, ...]) -> int:
        if diff[0] == "remove_column" and (diff[2], diff[3].name) in renamed:
            return 1  # renames early: later operations may use the new name
        return _ORDER.get(diff[0], len(_ORDER))

    for diff in sorted(flat, key=order):
        kind = diff[0]
        handler = _HANDLERS.get(kind)
        if handler is None:
            out.add(f"# ops.SQL(...)  # TODO: no phased operation for Alembic's {kind}: {diff[1:]!r}")
            out.todos.append(f"{kind}: write it by hand")
            continue
        handler(out, diff, renamed=renamed, skip_added=skip_added, removed=removed, added=added)
    return out


def _pair_indexes(
    flat: list[tuple[Any, ...]], renamed: Mapping[tuple[str, str], str], out: GeneratedOps
) -> list[tuple[Any, ...]]:
    """An index Alembic sees removed and added under one name: a rename carries it, or a TODO.

    Both live at once during a migration, so one name cannot be dropped at
    contract and created at expand.
    """
    added = {d[1].name: d for d in flat if d[0] == "add_index"}
    removed = {d[1].name: d for d in flat if d[0] == "remove_index"}
    paired = set(added) & set(removed)
    for name in sorted(paired):
        old_index, new_index = removed[name][1], added[name][1]
        table = old_index.table.name
        old_columns = [renamed.get((table, c), c) for c in _index_columns(old_index)]
        if old_columns == _index_columns(new_index) and old_index.unique == new_index.unique:
            continue  # the rename carries the index over to the new column
        out.lines.append(
            f"# TODO: index {name} changes from {_index_columns(old_index)} to "
            f"{_index_columns(new_index)}: create it under a new name (ops.CreateIndex), "
            "then drop the old one (ops.DropIndex)")
        out.todos.append(f"index {name}: changed columns")
    return [d for d in flat if not (d[0] in ("add_index", "remove_index") and d[1].name in paired)]


def _index_columns(index: Any) -> list[str]:
    return [getattr(c, "name", str(c)) for c in index.expressions]


def _flatten(diffs: Iterable[Any]) -> Iterable[tuple[Any, ...]]:
    for diff in diffs:
        if isinstance(diff, list):  # column modifications come grouped per column
            yield from diff
        else:
            yield diff


def _q(value: str | None) -> str:
    return repr(value)


def _table_ref(schema: str | None, table: str) -> str:
    return _q(table) + (f", schema={_q(schema)}" if schema else "")


def _type(type_: Any) -> str:
    from sqlalchemy.dialects import postgresql

    return _q(str(type_.compile(dialect=postgresql.dialect())))  # type: ignore[no-untyped-call]


def _server_default(column: sa.Column[Any]) -> str | None:
    default = column.server_default
    arg = getattr(default, "arg", None)
    if arg is None:
        return None
    text = getattr(arg, "text", arg)
    return str(text)


def _add_table(out: GeneratedOps, diff: tuple[Any, ...], **_: Any) -> None:
    from alembic.autogenerate import render_python_code
    from alembic.operations import ops as alembic_ops

    table = diff[1]
    code = render_python_code(
        alembic_ops.UpgradeOps(ops=[alembic_ops.CreateTableOp.from_table(table)]),
        sqlalchemy_module_prefix="sa.", alembic_module_prefix="op.",
    )
    # Alembic renders op.create_table('t', sa.Column(...), ..., sa.PrimaryKeyConstraint(...));
    # CreateTable takes the same arguments, constraints by keyword.
    body = code.strip()
    start, end = body.index("(") + 1, body.rindex(")")
    columns, constraints, keywords = _split_create_table_args(body[start:end])
    args = [*columns]
    if constraints:
        args.append("constraints=[" + ", ".join(constraints) + "]")
    args.extend(k for k in keywords if k.startswith("schema="))
    out.imports.add("import sqlalchemy as sa")
    out.add("ops.CreateTable(" + ", ".join(args) + ")")
    for index in sorted(table.indexes, key=lambda i: i.name or ""):
        _add_index(out, ("add_index", index))


def _split_create_table_args(text: str) -> tuple[list[str], list[str], list[str]]:
    """Split Alembic's rendered create_table arguments at top-level commas."""
    parts: list[str] = []
    depth, current, quote = 0, "", ""
    for char in text:
        if quote:
            current += char
            if char == quote:
                quote = ""
            continue
        if char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += char
    if current.strip():
        parts.append(current.strip())
    name, rest = parts[0], parts[1:]
    columns = [name] + [p for p in rest if p.startswith("sa.Column(")]
    constraints = [p for p in rest if p.startswith("sa.") and not p.startswith("sa.Column(")]
    keywords = [p for p in rest if not p.startswith("sa.")]
    return columns, constraints, keywords


def _add_column(out: GeneratedOps, diff: tuple[Any, ...], *, skip_added: set[tuple[str, str]],
                removed: set[tuple[str, str]], **_: Any) -> None:
    _, schema, table, column = diff
    if (table, column.name) in skip_added:
        return
    ref = _table_ref(schema, table)
    default = _server_default(column)
    hint = []
    gone = sorted(c for t, c in removed if t == table)
    if gone:
        hint.append(
            f"TODO: if {table}.{column.name} replaces {', '.join(gone)}, this is a rename: "
            f"zdmigrate new --autogenerate --rename {table}.{gone[0]}={column.name}")
    if column.nullable:
        extra = f", default={_q(default)}" if default is not None else ""
        out.add(f"ops.AddColumn({ref}, {_q(column.name)}, {_type(column.type)}{extra})", *hint)
    elif default is not None:
        out.add(f"ops.AddColumn({ref}, {_q(column.name)}, {_type(column.type)}, "
                f"nullable=False, default={_q(default)})", *hint)
    else:
        out.add(f"ops.AddColumn({ref}, {_q(column.name)}, {_type(column.type)})", *hint)
        out.add(f"ops.SetNotNull({ref}, {_q(column.name)}, fill={_q(FILL_PLACEHOLDER)})",
                f"TODO: {table}.{column.name} is NOT NULL with no server default: write the "
                "value existing rows and old app versions' rows get")
        out.todos.append(f"{table}.{column.name}: the fill of SetNotNull")


def _remove_column(out: GeneratedOps, diff: tuple[Any, ...], *,
                   renamed: dict[tuple[str, str], str], added: set[tuple[str, str]],
                   **_: Any) -> None:
    _, schema, table, column = diff
    ref = _table_ref(schema, table)
    new = renamed.get((table, column.name))
    if new is not None:
        out.add(f"ops.RenameColumn({ref}, {_q(column.name)}, {_q(new)})")
        return
    fresh = sorted(c for t, c in added if t == table)
    comments = [f"the models no longer have {table}.{column.name}: its data is dropped at "
                "contract, once no app version that uses it runs"]
    if fresh:
        comments.append(
            f"TODO: if it was renamed to {' or '.join(fresh)}, use "
            f"zdmigrate new --autogenerate --rename {table}.{column.name}={fresh[0]}")
    out.add(f"ops.DropColumn({ref}, {_q(column.name)})", *comments)


def _modify_type(out: GeneratedOps, diff: tuple[Any, ...], **_: Any) -> None:
    _, schema, table, column, _existing, old_type, new_type = diff
    ref = _table_ref(schema, table)
    new_sql = _type(new_type)[1:-1]
    old_sql = _type(old_type)[1:-1]
    if widens_in_place(old_sql, new_sql):
        out.add(f"ops.WidenColumnType({ref}, {_q(column)}, {_q(new_sql)})",
                f"{table}.{column}: {old_sql} -> {new_sql}, in place: no rewrite, no new column")
        return
    out.add(
        f"ops.ChangeColumnType({ref}, {_q(column)}, {_q(new_sql)}, "
        f"up={_q(f'{_ident(column)}::{new_sql}')})",
        f"{table}.{column}: {old_sql} -> {new_sql}; a copy of the new type is kept in sync "
        "and swapped in under the same name at contract",
        f"TODO: check that up= converts every existing value of {table}.{column}",
    )


def widens_in_place(old: str, new: str) -> bool:
    """Does PostgreSQL change `old` to `new` without a rewrite (what WidenColumnType takes)?"""
    from zdmigrate.errors import OperationInvalid
    from zdmigrate.ops.widen_column_type import _parse_type

    try:
        (old_base, old_mods, old_array), (new_base, new_mods, new_array) = (
            _parse_type(old), _parse_type(new))
    except OperationInvalid:
        return False
    if old_array or new_array:
        return False
    if new_base in ("varchar", "text") and not new_mods:
        return old_base in ("varchar", "text") and (old_base, new_base) != ("text", "text")
    if new_base == old_base == "varchar" and new_mods and old_mods:
        return old_mods[0] <= new_mods[0]
    if new_base == old_base == "varbit":
        return not new_mods or (bool(old_mods) and old_mods[0] <= new_mods[0])
    if new_base == old_base == "numeric":
        if not new_mods:
            return True
        if not old_mods:
            return False
        old_scale = old_mods[1] if len(old_mods) > 1 else 0
        new_scale = new_mods[1] if len(new_mods) > 1 else 0
        return old_mods[0] <= new_mods[0] and old_scale == new_scale
    return new_base == "inet" and old_base == "cidr"


def _ident(name: str) -> str:
    from psycopg import sql

    return sql.Identifier(name).as_string(None)


def _modify_nullable(out: GeneratedOps, diff: tuple[Any, ...], **_: Any) -> None:
    _, schema, table, column, existing, _old, nullable = diff
    ref = _table_ref(schema, table)
    if nullable:
        out.add(f"ops.DropNotNull({ref}, {_q(column)})")
        return
    default = existing.get("existing_server_default")
    fill = str(getattr(default, "arg", default)) if default not in (None, False) else None
    if fill:
        out.add(f"ops.SetNotNull({ref}, {_q(column)}, fill={_q(fill)})")
    else:
        out.add(f"ops.SetNotNull({ref}, {_q(column)}, fill={_q(FILL_PLACEHOLDER)})",
                f"TODO: write the value rows where {table}.{column} is NULL get")
        out.todos.append(f"{table}.{column}: the fill of SetNotNull")


def _modify_default(out: GeneratedOps, diff: tuple[Any, ...], **_: Any) -> None:
    _, schema, table, column, _existing, _old, new = diff
    ref = _table_ref(schema, table)
    if new is None:
        out.add(f"ops.DropDefault({ref}, {_q(column)})")
    else:
        out.add(f"ops.SetDefault({ref}, {_q(column)}, {_q(str(getattr(new, 'arg', new)))})")


def _add_index(out: GeneratedOps, diff: tuple[Any, ...], **_: Any) -> None:
    index = diff[1]
    table = index.table
    columns = _index_columns(index)
    extra = ", unique=True" if index.unique else ""
    out.add(f"ops.CreateIndex({_q(index.name)}, {_table_ref(table.schema, table.name)}, "
            f"{columns!r}{extra})")


def _remove_index(out: GeneratedOps, diff: tuple[Any, ...], **_: Any) -> None:
    index = diff[1]
    schema = index.table.schema if index.table is not None else None
    out.add(f"ops.DropIndex({_q(index.name)}" + (f", schema={_q(schema)})" if schema else ")"))


def _add_fk(out: GeneratedOps, diff: tuple[Any, ...], **_: Any) -> None:
    fk = diff[1]
    table = fk.parent
    ref_table = fk.referred_table
    columns = [c.name for c in fk.columns]
    ref_columns = [e.column.name for e in fk.elements]
    extra = f", name={_q(fk.name)}" if fk.name else ""
    if fk.ondelete:
        extra += f", on_delete={_q(fk.ondelete)}"
    if table.schema:
        extra += f", schema={_q(table.schema)}"
    if ref_table.schema:
        extra += f", ref_schema={_q(ref_table.schema)}"
    out.add(f"ops.AddForeignKey({_q(table.name)}, {columns!r}, {_q(ref_table.name)}, "
            f"{ref_columns!r}{extra})")


def _add_constraint(out: GeneratedOps, diff: tuple[Any, ...], **_: Any) -> None:
    constraint = diff[1]
    import sqlalchemy as sa

    if not isinstance(constraint, sa.UniqueConstraint):
        out.add(f"# ops.SQL(...)  # TODO: add {type(constraint).__name__} {constraint.name}")
        out.todos.append(f"constraint {constraint.name}: write it by hand")
        return
    table = constraint.table
    extra = f", name={_q(str(constraint.name))}" if constraint.name else ""
    if table.schema:
        extra += f", schema={_q(table.schema)}"
    out.add(f"ops.AddUnique({_q(table.name)}, {[c.name for c in constraint.columns]!r}{extra})")


def _remove_table(out: GeneratedOps, diff: tuple[Any, ...], **_: Any) -> None:
    table = diff[1]
    out.add(f"ops.DropTable({_table_ref(table.schema, table.name)})",
            f"the models no longer have {table.name}: it is dropped at contract, once no app "
            "version that uses it runs")


#: The order operations are written in: tables before what refers to them, drops last.
_ORDER = {
    "add_table": 0, "add_column": 2, "modify_type": 3, "modify_nullable": 4,
    "modify_default": 4, "add_index": 5, "add_constraint": 6, "add_fk": 7,
    "remove_index": 8, "remove_fk": 8, "remove_constraint": 8, "remove_column": 9,
    "remove_table": 10,
}

_HANDLERS: dict[str, Callable[..., None]] = {
    "add_table": _add_table,
    "remove_table": _remove_table,
    "add_column": _add_column,
    "remove_column": _remove_column,
    "modify_type": _modify_type,
    "modify_nullable": _modify_nullable,
    "modify_default": _modify_default,
    "add_index": _add_index,
    "remove_index": _remove_index,
    "add_fk": _add_fk,
    "add_constraint": _add_constraint,
}


def migration_source(
    *, title: str, revision: str, down_revision: str | None, generated: GeneratedOps,
    app: str | None,
) -> str:
    """The text of a migration file of operations."""
    imports = [*sorted(generated.imports), ""] if generated.imports else []
    imports.append("from zdmigrate import ops")
    body = "\n".join(
        ("    " + line) for line in generated.lines
    ) or "    # no differences between the models and the database"
    app_name = app or "myapp"
    todo = ""
    if generated.todos:
        todo = "\nTODO before the first phase runs:\n" + "\n".join(
            f"- {item}" for item in generated.todos) + "\n"
    return (
        f'"""{title}\n\nGenerated by `zdmigrate new --autogenerate`: review it.\n{todo}"""\n\n'
        + "\n".join(imports) + "\n\n"
        f"revision = {revision!r}\n"
        f"down_revision = {down_revision!r}\n\n"
        "# Which app versions fit which phase (PEP 440). Fill it in: until it is, contract of a\n"
        "# destructive change is refused as not proven.\n"
        f'# compat = {{"{app_name}": {{"dual_write_from": "X.Y", "read_new_from": "X.Y", '
        '"old_unused_from": "X.Y"}}\n\n'
        "operations = [\n" + body + "\n]\n"
    )
