"""CreateIndex: an index built with CREATE INDEX CONCURRENTLY at expand.

    ops.CreateIndex("orders_user_id_idx", "orders", ["user_id"], where="deleted_at IS NULL")
    ops.CreateIndex("users_email_pattern_idx", "users", ["email"],
                    opclass={"email": "text_pattern_ops"}, with_={"fillfactor": 70})

Per column, `opclass` names an operator class (with parameters, PostgreSQL 13+:
``"gist_trgm_ops(siglen=32)"``), `order` a sort order
(``"DESC NULLS LAST"``) and `collate` a collation; `with_` gives storage
parameters; `nulls_not_distinct` (PostgreSQL 15+) makes a unique index treat
NULLs as equal.

CONCURRENTLY builds without blocking writes, outside a transaction (the step is
autocommit). A build that fails leaves an INVALID index behind; the engine drops
it before retrying. Rolling back expand drops the index, also concurrently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._expressions import check_expression
from zdmigrate.ops._names import QualifiedName, columns_list, render
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step

_METHODS = {"btree", "hash", "gist", "spgist", "gin", "brin"}
_ORDERS = {f"{d}{n}".strip() for d in ("", "ASC", "DESC")
           for n in ("", " NULLS FIRST", " NULLS LAST")} - {""}
_PARAMETER = re.compile(r"[a-z_][a-z0-9_]*")
_OPCLASS = re.compile(r"\s*([^()\s]+)\s*(?:\((.*)\))?\s*")
_OPCLASS_PARAMETER = re.compile(r"\s*([a-z_][a-z0-9_]*)\s*=\s*([0-9]+(?:\.[0-9]+)?|[a-z_]+)\s*")
StorageValue = int | float | bool | str


def _column_sql(column: str, opclass: Mapping[str, str], order: Mapping[str, str],
                collate: Mapping[str, str]) -> sql.Composable:
    parts: list[sql.Composable] = [sql.Identifier(column)]
    if column in collate:
        parts.append(sql.SQL("COLLATE {}").format(sql.Identifier(*collate[column].split("."))))
    if column in opclass:
        name, params = _parse_opclass(opclass[column])
        parts.append(sql.Identifier(*name.split(".")))
        if params:
            parts[-1] = sql.SQL("{}({})").format(parts[-1], sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.SQL(k), sql.SQL(v)) for k, v in params))
    if column in order:
        parts.append(sql.SQL(order[column]))
    return sql.SQL(" ").join(parts)


def _parse_opclass(text: str) -> tuple[str, list[tuple[str, str]]]:
    """``"gist_trgm_ops(siglen=32)"`` -> ``("gist_trgm_ops", [("siglen", "32")])``."""
    match = _OPCLASS.fullmatch(text)
    if match is None:
        raise OperationInvalid(f"operator class {text!r} is not 'name' or 'name(param=value, ...)'")
    params = []
    for item in (match.group(2) or "").split(",") if match.group(2) else []:
        param = _OPCLASS_PARAMETER.fullmatch(item)
        if param is None:
            raise OperationInvalid(
                f"operator class {text!r}: parameter {item.strip()!r} is not name=number or name=word")
        params.append((param.group(1), param.group(2)))
    return match.group(1), params


def _storage_sql(with_: Mapping[str, StorageValue]) -> sql.Composable:
    def value(v: StorageValue) -> sql.Composable:
        if isinstance(v, bool):
            return sql.SQL("on" if v else "off")
        if isinstance(v, (int, float)):
            return sql.SQL(repr(v))
        return sql.Literal(v)

    return sql.SQL("WITH ({})").format(sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.SQL(k), value(v)) for k, v in with_.items()))


def create_index_sql(
    name: str, table: QualifiedName, columns: Sequence[str], *, unique: bool = False,
    where: str | None = None, method: str | None = None, include: Sequence[str] = (),
    opclass: Mapping[str, str] | None = None, order: Mapping[str, str] | None = None,
    collate: Mapping[str, str] | None = None, with_: Mapping[str, StorageValue] | None = None,
    nulls_not_distinct: bool = False,
) -> str:
    parts: list[sql.Composable] = [sql.SQL("CREATE {}INDEX CONCURRENTLY {} ON {}").format(
        sql.SQL("UNIQUE " if unique else ""), sql.Identifier(name), table.ident)]
    if method:
        parts.append(sql.SQL("USING {}").format(sql.SQL(method)))
    parts.append(sql.SQL("({})").format(sql.SQL(", ").join(
        _column_sql(c, opclass or {}, order or {}, collate or {}) for c in columns)))
    if include:
        parts.append(sql.SQL("INCLUDE ({})").format(sql.SQL(", ").join(map(sql.Identifier, include))))
    if nulls_not_distinct:
        parts.append(sql.SQL("NULLS NOT DISTINCT"))
    if with_:
        parts.append(_storage_sql(with_))
    if where:
        parts.append(sql.SQL("WHERE {}").format(sql.SQL(where)))
    return render(sql.SQL(" ").join(parts))


def drop_index_step(index: QualifiedName) -> SQLStep:
    return SQLStep(render(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(index.ident)),
                   autocommit=True)


class CreateIndex(Operation):
    name = "create_index"
    keeps_table_shape = True

    def __init__(
        self,
        name: str,
        table: str,
        columns: Sequence[str] | str,
        *,
        unique: bool = False,
        where: str | None = None,
        method: str | None = None,
        include: Sequence[str] | str = (),
        opclass: Mapping[str, str] | None = None,
        order: Mapping[str, str] | None = None,
        collate: Mapping[str, str] | None = None,
        with_: Mapping[str, StorageValue] | None = None,
        nulls_not_distinct: bool = False,
        schema: str | None = None,
    ) -> None:
        self.table = QualifiedName.parse(table, schema)
        self.index = self.table.sibling(name)
        self.columns = columns_list(columns)
        self.unique = unique
        self.where = check_expression(where, "where") if where is not None else None
        if method is not None and method.lower() not in _METHODS:
            raise OperationInvalid(
                f"CreateIndex {name}: unknown method {method!r}; one of {', '.join(sorted(_METHODS))}")
        self.method = method.lower() if method else None
        self.include = columns_list(include) if include else []
        self.opclass = _per_column(name, "opclass", opclass, self.columns)
        for value in self.opclass.values():
            try:
                _parse_opclass(value)
            except OperationInvalid as exc:
                raise OperationInvalid(f"CreateIndex {name}: {exc.message}") from None
        self.collate = _per_column(name, "collate", collate, self.columns)
        self.order = {c: o.upper() for c, o in
                      _per_column(name, "order", order, self.columns).items()}
        for column, value in self.order.items():
            if value not in _ORDERS:
                raise OperationInvalid(
                    f"CreateIndex {name}: order {value!r} of {column!r} is not ASC or DESC, "
                    "optionally with NULLS FIRST or NULLS LAST")
        self.with_ = dict(with_ or {})
        for key, val in self.with_.items():
            if not isinstance(key, str) or not _PARAMETER.fullmatch(key) or not isinstance(
                    val, (int, float, bool, str)):
                raise OperationInvalid(
                    f"CreateIndex {name}: storage parameter {key!r}={val!r} must be a lower-case "
                    "name with a number, boolean or text value")
        if nulls_not_distinct and not unique:
            raise OperationInvalid(f"CreateIndex {name}: nulls_not_distinct needs unique=True")
        self.nulls_not_distinct = nulls_not_distinct

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.EXPAND:
            return []
        return [SQLStep(create_index_sql(
            self.index.name, self.table, self.columns, unique=self.unique, where=self.where,
            method=self.method, include=self.include, opclass=self.opclass, order=self.order,
            collate=self.collate, with_=self.with_, nulls_not_distinct=self.nulls_not_distinct),
            autocommit=True)]

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        return [drop_index_step(self.index)] if phase is Phase.EXPAND else []

    def requirements(self) -> list[Requirement]:
        out = [
            req.table_exists(self.table),
            req.index_name_free(self.index),
            *(req.column_exists(self.table, c) for c in [*self.columns, *self.include]),
        ]
        if self.nulls_not_distinct:
            out.append(Requirement(
                "SELECT current_setting('server_version_num')::int >= 150000",
                f"index {self.index}: nulls_not_distinct needs PostgreSQL 15 or later"))
        return out

    def describe(self) -> str:
        return f"create index {self.index} on {self.table}"


def _per_column(
    index: str, what: str, value: Mapping[str, str] | None, columns: list[str]
) -> dict[str, str]:
    """`value` (column -> setting) checked: known columns, non-empty text settings."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise OperationInvalid(f"CreateIndex {index}: {what} must map column names to text")
    for column, setting in value.items():
        if column not in columns:
            raise OperationInvalid(
                f"CreateIndex {index}: {what} names {column!r}, which is not an indexed column")
        if not isinstance(setting, str) or not setting.strip():
            raise OperationInvalid(
                f"CreateIndex {index}: {what} of {column!r} must be non-empty text, got {setting!r}")
    return {c: s.strip() for c, s in value.items()}
