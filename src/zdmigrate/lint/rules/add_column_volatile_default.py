"""add-column-volatile-default: ADD COLUMN with a volatile default rewrites the table under lock.

Since PostgreSQL 11 a constant (or stable, evaluated-once) default is stored in
the catalog and the ALTER is instant. A volatile default (random(), clock_timestamp(),
gen_random_uuid(), any function zdmigrate does not know) makes PostgreSQL
rewrite every row under ACCESS EXCLUSIVE. Before 11 any non-NULL default does.
"""

from __future__ import annotations

from collections.abc import Iterator

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._add_column import added_columns
from zdmigrate.lint.rules._base import Category, Example, Finding, Rule

#: functions without arguments that are stable or immutable: evaluated once by ALTER TABLE
_NO_ARG_NON_VOLATILE = frozenset({
    "now", "transaction_timestamp", "current_timestamp", "localtimestamp",
    "current_date", "current_time", "localtime", "current_user", "session_user",
    "current_schema", "current_database", "pi", "version",
})
#: immutable or stable functions that take arguments
_NON_VOLATILE = frozenset({
    "lower", "upper", "coalesce", "nullif", "greatest", "least", "abs", "round", "trim",
    "btrim", "ltrim", "rtrim", "length", "concat", "concat_ws", "to_jsonb", "to_json",
    "jsonb_build_object", "json_build_object", "jsonb_build_array", "json_build_array",
    "make_interval", "make_date", "make_timestamp", "make_timestamptz", "to_timestamp",
    "date_trunc", "array_fill", "md5", "replace", "substring", "left", "right",
})


def is_non_volatile(expr: n.Node | None) -> bool:
    """True for an expression ALTER TABLE evaluates once (constants, casts, known functions)."""
    if not expr:
        return True
    ((kind, node),) = expr.items()
    if kind in ("A_Const", "SQLValueFunction"):
        return True
    if kind == "TypeCast":
        return is_non_volatile(node.get("arg"))
    if kind == "A_Expr":
        return is_non_volatile(node.get("lexpr")) and is_non_volatile(node.get("rexpr"))
    if kind == "BoolExpr":
        return all(is_non_volatile(a) for a in node.get("args") or ())
    if kind == "A_ArrayExpr":
        return all(is_non_volatile(e) for e in node.get("elements") or ())
    if kind in ("CoalesceExpr", "MinMaxExpr"):
        return all(is_non_volatile(a) for a in node.get("args") or ())
    if kind == "FuncCall":
        name = n.func_name(node)
        args = node.get("args") or ()
        if not args and name in _NO_ARG_NON_VOLATILE:
            return True
        return name in _NON_VOLATILE and all(is_non_volatile(a) for a in args)
    return False


def _is_null(expr: n.Node | None) -> bool:
    return bool(expr) and bool((expr or {}).get("A_Const", {}).get("isnull"))


class AddColumnVolatileDefault(Rule):
    id = "add-column-volatile-default"
    category = Category.LOCK
    summary = "ADD COLUMN with a volatile DEFAULT (or any DEFAULT before PostgreSQL 11)"
    why = (
        "PostgreSQL must compute the default for every existing row, so it rewrites the "
        "table under an ACCESS EXCLUSIVE lock: no reads or writes until it is done."
    )
    fix = (
        "add the column without a default (or with a constant one), SET DEFAULT in a "
        "separate statement so new rows get it, then fill existing rows with a batched "
        "backfill (ctx.backfill)."
    )
    targets = ("AlterTableStmt",)
    alter_subtypes = frozenset({"AT_AddColumn"})
    bad = (Example("ALTER TABLE orders ADD COLUMN public_id uuid DEFAULT gen_random_uuid();"),)
    good = (
        Example("ALTER TABLE orders ADD COLUMN public_id uuid;\n"
                "ALTER TABLE orders ALTER COLUMN public_id SET DEFAULT gen_random_uuid();"),
        Example("ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new';"),
    )

    def check(self, stmt: Statement, state: LintState) -> Iterator[Finding]:
        rel = stmt.node.get("relation")
        for col in added_columns(stmt.node):
            for con in n.column_constraints(col):
                if con.get("contype") != "CONSTR_DEFAULT":
                    continue
                expr = con.get("raw_expr")
                where = f"ADD COLUMN {n.qualified(rel)}.{col.get('colname')}"
                if state.pg_version < 11 and not _is_null(expr):
                    yield Finding(
                        f"{where} with a DEFAULT on PostgreSQL {state.pg_version}",
                        table=n.relname(rel),
                        why="Before PostgreSQL 11 any non-NULL default rewrites the whole table "
                        "under an ACCESS EXCLUSIVE lock.",
                    )
                elif not is_non_volatile(expr):
                    yield Finding(f"{where} with a volatile DEFAULT", table=n.relname(rel))
