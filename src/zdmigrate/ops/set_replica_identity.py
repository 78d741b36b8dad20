"""SetReplicaIdentity: what logical replication records of an updated or deleted row.

    ops.SetReplicaIdentity("fruits", "full")          # or "default", "nothing"
    ops.SetReplicaIdentity("fruits", index="fruits_name_key")

Set at expand: it changes what the WAL records, for every app version alike,
and it is an instant catalog change under a brief lock. The identity it replaces
(and its index) is saved in a memo function, so rolling back expand restores it
exactly; contract drops the memo.

Warning: with ``"nothing"``, UPDATE and DELETE fail on a table that a
publication replicates updates or deletes of, whichever app version runs them.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _memo
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._memo import MemoOperation
from zdmigrate.ops._names import QualifiedName, do_block, generated_name, render
from zdmigrate.ops.base import Requirement
from zdmigrate.steps import SQLStep

_KINDS = {"default": "DEFAULT", "full": "FULL", "nothing": "NOTHING"}


class SetReplicaIdentity(MemoOperation):
    name = "set_replica_identity"

    def __init__(
        self, table: str, identity: str | None = None, *, index: str | None = None,
        schema: str | None = None,
    ) -> None:
        self.table = QualifiedName.parse(table, schema)
        if (identity is None) == (index is None):
            raise OperationInvalid(
                f"SetReplicaIdentity on {self.table}: give an identity "
                f"({', '.join(sorted(_KINDS))}) or index=, not both")
        if identity is not None and (not isinstance(identity, str)
                                     or identity.lower() not in _KINDS):
            raise OperationInvalid(
                f"SetReplicaIdentity on {self.table}: identity {identity!r} is not one of "
                f"{', '.join(sorted(_KINDS))} (use index= for an index)")
        if index is not None and (not isinstance(index, str) or not index):
            raise OperationInvalid(
                f"SetReplicaIdentity on {self.table}: index must be a name, got {index!r}")
        self.identity = identity.lower() if identity else None
        self.index = index

    def _memo(self, migration_id: str) -> QualifiedName:
        return self.table.sibling(generated_name(migration_id, "replident", self.table.name, "memo"))

    def _facts(self) -> str:
        return (
            "jsonb_build_object("
            f"'identity', (SELECT relreplident FROM pg_catalog.pg_class WHERE oid = {self.table.regclass}), "
            "'index', (SELECT c.relname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c "
            f"ON c.oid = i.indexrelid WHERE i.indrelid = {self.table.regclass} AND i.indisreplident))"
        )

    def _change(self) -> SQLStep:
        target: sql.Composable
        if self.index is not None:
            target = sql.SQL("USING INDEX {}").format(sql.Identifier(self.index))
        else:
            assert self.identity is not None
            target = sql.SQL(_KINDS[self.identity])
        return SQLStep(render(sql.SQL("ALTER TABLE {} REPLICA IDENTITY {}").format(
            self.table.ident, target)))

    def _restore(self, memo: QualifiedName) -> SQLStep:
        alter = render(sql.Literal(render(sql.SQL("ALTER TABLE {} REPLICA IDENTITY ").format(
            self.table.ident))))
        return SQLStep(
            do_block(f"\nDECLARE\n  kind text := {_memo.read(memo, 'identity')};\n"
            f"  idx text := {_memo.read(memo, 'index')};\nBEGIN\n"
            f"  EXECUTE {alter} || CASE kind WHEN 'f' THEN 'FULL' WHEN 'n' THEN 'NOTHING'\n"
            "    WHEN 'i' THEN 'USING INDEX ' || quote_ident(idx) ELSE 'DEFAULT' END;\n"
            f"END\n"),
            description=f"restore the replica identity of {self.table}",
        )

    def requirements(self) -> list[Requirement]:
        out = [req.table_exists(self.table)]
        if self.index is not None:
            out.append(Requirement(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i "
                "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_catalog.pg_class t ON t.oid = i.indrelid "
                "JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace "
                "WHERE n.nspname = %s AND t.relname = %s AND c.relname = %s AND i.indisunique "
                "AND i.indpred IS NULL AND i.indimmediate AND i.indisvalid)",
                f"index {self.index!r} is not a valid, unique, non-partial, non-deferrable index "
                f"of table {self.table}",
                params=[self.table.schema, self.table.name, self.index],
            ))
        return out

    def _remembered(self) -> str:
        return f"the replica identity of {self.table}"

    def describe(self) -> str:
        what = f"index {self.index}" if self.index else self.identity
        return f"set replica identity of {self.table} to {what}"
