"""How operations name things: qualified tables, quoted identifiers, generated object names.

Every table is rendered schema-qualified (``"public"."users"`` when no schema is
given), so no generated statement depends on the session's search_path. Names
that zdmigrate generates (trigger functions, helper constraints) start with
``zdm_`` and the migration id, and are cut to PostgreSQL's 63-byte limit with a
short hash so two long names never collide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from zdmigrate.errors import OperationInvalid

DEFAULT_SCHEMA = "public"
MAX_IDENTIFIER_BYTES = 63


@dataclass(frozen=True)
class QualifiedName:
    """A schema-qualified object name, e.g. a table: ``QualifiedName("shop", "orders")``."""

    schema: str
    name: str

    @classmethod
    def parse(cls, value: str, schema: str | None = None, *, what: str = "table") -> QualifiedName:
        """``"users"``, ``"shop.users"`` or ``("users", schema="shop")``.

        A dot splits schema from name; a name that itself contains a dot must be
        given with ``schema=`` (then `value` is taken as the bare name).
        """
        if not isinstance(value, str) or not value.strip():
            raise OperationInvalid(f"{what} name must be a non-empty string, got {value!r}")
        if schema is not None:
            return cls(schema, value)
        if "." in value:
            head, _, tail = value.partition(".")
            if not head or not tail:
                raise OperationInvalid(f"{what} name {value!r} is not 'name' or 'schema.name'")
            return cls(head, tail)
        return cls(DEFAULT_SCHEMA, value)

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def regclass(self) -> str:
        """SQL: the object's oid, by a ``::regclass`` cast (an error when it does not exist)."""
        return f"{literal(render(self.ident))}::regclass"

    def sibling(self, name: str) -> QualifiedName:
        """Another object in the same schema."""
        return QualifiedName(self.schema, name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


def generated_name(migration_id: str, *parts: str) -> str:
    """``zdm_<migration>_<parts>``, shortened with a hash when over 63 bytes."""
    full = "_".join(["zdm", migration_id, *parts])
    if len(full.encode()) <= MAX_IDENTIFIER_BYTES:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    head = full.encode()[: MAX_IDENTIFIER_BYTES - len(digest) - 1].decode(errors="ignore")
    return f"{head}_{digest}"


def dollar_quoted(body: str) -> str:
    """`body` in dollar quotes whose tag does not occur in it (a name may hold ``$zdm$``)."""
    tag, n = "$zdm$", 0
    while tag in body or body.endswith(tag[:-1]):
        n += 1
        tag = f"$zdm{n}$"
    return f"{tag}{body}{tag}"


def do_block(body: str) -> str:
    """``DO <tag><body><tag>``: an anonymous PL/pgSQL block, quoted by `dollar_quoted`.
    Every generated DO block goes through here, so a name holding ``$zdm$`` in the
    body never ends the quote early."""
    return "DO " + dollar_quoted(body)


def sql_name_prefix(expr: str, max_bytes: int) -> str:
    """SQL for the longest prefix of the name `expr` (SQL text) that fits in `max_bytes` bytes.

    ``left(name, n)`` counts characters: 40 CJK characters are 120 bytes, which
    PostgreSQL then cuts at 63, so a generated name could come out as the original.
    """
    return (
        f"(SELECT coalesce(string_agg(ch, '' ORDER BY pos), '') FROM (SELECT ch, pos, "
        f"sum(octet_length(ch)) OVER (ORDER BY pos) AS upto FROM "
        f"regexp_split_to_table({expr}, '') WITH ORDINALITY AS chars(ch, pos)) AS p "
        f"WHERE upto <= {int(max_bytes)})"
    )


def render(composed: sql.Composable) -> str:
    """SQL text of a composed statement; needs no connection."""
    return composed.as_string(None)


def literal(value: str) -> str:
    """SQL text of a string literal."""
    return render(sql.Literal(value))


def columns_list(columns: Sequence[str] | str) -> list[str]:
    """Accept one column name or a sequence of them."""
    if isinstance(columns, str):
        return [columns]
    out = list(columns)
    if not out or not all(isinstance(c, str) and c for c in out):
        raise OperationInvalid(f"columns must be a non-empty list of names, got {columns!r}")
    return out
