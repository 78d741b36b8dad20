"""User-written SQL expressions (`up`, `down`, `fill`, `fix`), and their form inside a trigger.

An expression is written over the row's own columns, as in ``UPDATE t SET x = <expr>``.
Inside a row trigger the same columns are fields of ``NEW`` (or ``OLD``), so the
trigger uses a rewritten copy in which every unqualified column reference
``email`` becomes ``new.email``. The rewrite is done on the parse tree
(pglast), never on the text.

Surprise: inside a subquery, qualify the subquery's own columns
(``(SELECT t.name FROM teams t WHERE t.id = team_id)``); unqualified names are
taken as the row's columns.
"""

from __future__ import annotations

import pglast
from pglast import ast
from pglast.stream import RawStream
from pglast.visitors import Visitor

from zdmigrate.errors import OperationInvalid


def check_expression(expr: str, what: str) -> str:
    """The expression, stripped, if it parses as one SQL expression; else OperationInvalid."""
    if not isinstance(expr, str) or not expr.strip():
        raise OperationInvalid(f"{what} must be a non-empty SQL expression, got {expr!r}")
    _parse(expr, what)
    return expr.strip()


def on_record(expr: str, record: str = "new") -> str:
    """`expr` with each unqualified column reference qualified by `record` (NEW or OLD)."""
    target = _parse(expr, "expression")

    class _Qualify(Visitor):  # type: ignore[misc]
        def visit_ColumnRef(self, ancestors: object, node: ast.ColumnRef) -> ast.ColumnRef | None:
            fields = node.fields or ()
            if len(fields) == 1 and isinstance(fields[0], ast.String):
                return ast.ColumnRef(fields=(ast.String(sval=record), fields[0]))
            return None

    _Qualify()(target)
    targets = target.targetList or ()
    return str(RawStream()(targets[0].val))


def _parse(expr: str, what: str) -> ast.SelectStmt:
    try:
        stmts = pglast.parse_sql(f"SELECT ({expr})")
    except pglast.parser.ParseError as exc:
        raise OperationInvalid(f"{what} {expr!r} is not a valid SQL expression: {exc}") from None
    stmt = stmts[0].stmt if len(stmts) == 1 else None
    targets = getattr(stmt, "targetList", None) or ()
    if not isinstance(stmt, ast.SelectStmt) or len(targets) != 1 or stmt.fromClause:
        raise OperationInvalid(f"{what} {expr!r} must be a single SQL expression")
    return stmt
