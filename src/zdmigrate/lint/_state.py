"""What the linter remembers while it reads a migration: new tables, open transactions, checks.

Rules look at one statement at a time but some answers depend on what came
before: an index on a table created earlier in the same migration needs no
CONCURRENTLY; SET NOT NULL is cheap after a validated ``CHECK (col IS NOT
NULL)``; VALIDATE right after ADD ... NOT VALID in one transaction keeps the
lock. `LintState.track` updates that memory after the rules saw a statement.

The memory spans all phases of one migration (expand's CHECK ... NOT VALID is
what lets contract's SET NOT NULL pass), but transaction state is per unit of
execution: one .sql text, or one step (which zdmigrate runs in its own
transaction unless it must run outside one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from zdmigrate.lint import _nodes as n
from zdmigrate.lint._parse import Statement
from zdmigrate.phases import Phase


@dataclass
class LintState:
    """The linter's memory of what earlier statements did (see the module docstring)."""

    phase: Phase = Phase.EXPAND
    pg_version: int = 15
    #: tables created in this migration (lower-case relname): empty, so no lock matters
    created_tables: set[str] = field(default_factory=set)
    #: (table, constraint) -> column, for CHECK (column IS NOT NULL) not yet validated
    pending_not_null_checks: dict[tuple[str, str], str] = field(default_factory=dict)
    #: (table, column) proven NOT NULL by a validated CHECK constraint
    validated_not_null: set[tuple[str, str]] = field(default_factory=set)
    #: (table, column) -> type, for columns whose type this migration wrote
    column_types: dict[tuple[str, str], n.TypeInfo] = field(default_factory=dict)
    #: (table, column) -> type (SQL text) in the live database, when lint was given one
    catalog_types: Mapping[tuple[str, str], str] = field(default_factory=dict)
    #: index name -> its table, for indexes this migration created
    index_tables: dict[str, str] = field(default_factory=dict)
    #: an explicit BEGIN is open; holds the line of that BEGIN
    transaction_line: int | None = None
    #: the executor wraps this unit in a transaction (a zdmigrate step)
    implicit_transaction: bool = False
    #: (table, constraint) added NOT VALID inside the open explicit transaction
    not_valid_in_transaction: set[tuple[str, str]] = field(default_factory=set)

    @property
    def in_transaction_block(self) -> bool:
        return self.transaction_line is not None or self.implicit_transaction

    def is_new_table(self, name: str | None) -> bool:
        return name is not None and name.lower() in self.created_tables

    def old_type(self, table: str, column: str) -> n.TypeInfo | None:
        """The column's type before this statement: written earlier in the input, else the catalog's."""
        known = self.column_types.get((table, column))
        if known is not None or not self.catalog_types:
            return known
        text = self.catalog_types.get((table, column))
        if text is None:
            return None
        from zdmigrate.lint._runner import type_of

        info: n.TypeInfo | None = type_of(text)
        if info is not None:
            self.column_types[(table, column)] = info
        return info

    def begin_unit(self, *, implicit_transaction: bool) -> None:
        self.transaction_line = None
        self.implicit_transaction = implicit_transaction
        self.not_valid_in_transaction.clear()

    # -- memory updates, after the rules ran ----------------------------------

    def track(self, stmt: Statement) -> None:
        handler = _TRACKERS.get(stmt.kind)
        if handler is not None:
            handler(self, stmt)


def _track_create(state: LintState, stmt: Statement) -> None:
    node = stmt.node
    table = n.relname(node.get("relation"))
    if not table:
        return
    table = table.lower()
    state.created_tables.add(table)
    for elt in node.get("tableElts") or ():
        col = elt.get("ColumnDef")
        if col is not None and col.get("colname"):
            info = n.type_info(col.get("typeName"))
            if info:
                state.column_types[(table, col["colname"])] = info


def _track_create_as(state: LintState, stmt: Statement) -> None:
    into = stmt.node.get("into") or {}
    table = n.relname(into.get("rel"))
    if table:
        state.created_tables.add(table.lower())


def _track_alter(state: LintState, stmt: Statement) -> None:
    node = stmt.node
    table = (n.relname(node.get("relation")) or "").lower()
    for cmd in n.alter_cmds(node):
        sub = cmd.get("subtype")
        if sub == "AT_AddColumn":
            col = n.coldef(cmd)
            if col and col.get("colname"):
                info = n.type_info(col.get("typeName"))
                if info:
                    state.column_types[(table, col["colname"])] = info
        elif sub == "AT_AlterColumnType":
            col = n.coldef(cmd)
            info = n.type_info(col.get("typeName")) if col else None
            if info and cmd.get("name"):
                state.column_types[(table, cmd["name"])] = info
        elif sub == "AT_AddConstraint":
            con = n.constraint(cmd) or {}
            name = con.get("conname", "")
            if con.get("skip_validation") and state.transaction_line is not None:
                state.not_valid_in_transaction.add((table, name))
            column = not_null_check_column(con)
            if column is not None:
                if con.get("skip_validation"):
                    state.pending_not_null_checks[(table, name)] = column
                else:
                    state.validated_not_null.add((table, column))
        elif sub == "AT_ValidateConstraint":
            column = state.pending_not_null_checks.pop((table, cmd.get("name", "")), None)
            if column is not None:
                state.validated_not_null.add((table, column))
        elif sub == "AT_DropConstraint":
            state.pending_not_null_checks.pop((table, cmd.get("name", "")), None)


def not_null_check_column(con: dict[str, object]) -> str | None:
    """The column of a ``CHECK (column IS NOT NULL)`` constraint, else None."""
    if con.get("contype") != "CONSTR_CHECK":
        return None
    expr = con.get("raw_expr")
    if not isinstance(expr, dict):
        return None
    test = expr.get("NullTest")
    if not test or test.get("nulltesttype") != "IS_NOT_NULL":
        return None
    ref = (test.get("arg") or {}).get("ColumnRef")
    names = n.strings(ref.get("fields")) if ref else []
    return names[-1] if names else None


def _track_index(state: LintState, stmt: Statement) -> None:
    table = n.relname(stmt.node.get("relation"))
    name = stmt.node.get("idxname")
    if table and name:
        state.index_tables[name] = table.lower()


def _track_transaction(state: LintState, stmt: Statement) -> None:
    kind = stmt.node.get("kind", "")
    if kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
        if state.transaction_line is None:
            state.transaction_line = stmt.line
    elif kind in (
        "TRANS_STMT_COMMIT",
        "TRANS_STMT_ROLLBACK",
        "TRANS_STMT_COMMIT_PREPARED",
        "TRANS_STMT_ROLLBACK_PREPARED",
        "TRANS_STMT_PREPARE",
    ):
        state.transaction_line = None
        state.not_valid_in_transaction.clear()
        if kind != "TRANS_STMT_PREPARE":
            # committed (or gone): other sessions can write to those tables from now on
            state.created_tables.clear()


def _track_drop(state: LintState, stmt: Statement) -> None:
    if stmt.node.get("removeType") == "OBJECT_TABLE":
        for obj in stmt.node.get("objects") or ():
            names = n.strings((obj.get("List") or {}).get("items"))
            if names:
                state.created_tables.discard(names[-1].lower())


def _track_rename(state: LintState, stmt: Statement) -> None:
    node = stmt.node
    if node.get("renameType") == "OBJECT_TABLE":
        old = n.relname(node.get("relation"))
        if old and old.lower() in state.created_tables and node.get("newname"):
            state.created_tables.add(node["newname"].lower())


_TRACKERS = {
    "CreateStmt": _track_create,
    "CreateTableAsStmt": _track_create_as,
    "AlterTableStmt": _track_alter,
    "TransactionStmt": _track_transaction,
    "IndexStmt": _track_index,
    "DropStmt": _track_drop,
    "RenameStmt": _track_rename,
}
