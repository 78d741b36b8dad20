"""RenameConstraint: a constraint under a new name, renamed at contract.

    ops.RenameConstraint("users", "users_email_key", "users_email_unique")

Old app versions may name the constraint (``ON CONFLICT ON CONSTRAINT``, or
matching the name in a violation error), so the rename waits for contract, when
none of them runs any more; it is an instant catalog change under a brief
ACCESS EXCLUSIVE lock. A unique, primary key or exclusion constraint renames
its index with it, so the new name must also be free as an index name.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._names import QualifiedName, render
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import REMOVES_OLD_DEPENDENCY, SQLStep, Step


class RenameConstraint(Operation):
    name = "rename_constraint"
    keeps_table_shape = True

    def __init__(self, table: str, name: str, new_name: str, *, schema: str | None = None) -> None:
        self.table = QualifiedName.parse(table, schema)
        for value in (name, new_name):
            if not isinstance(value, str) or not value:
                raise OperationInvalid(
                    f"RenameConstraint on {self.table}: a constraint name must be a non-empty "
                    f"string, got {value!r}")
        if name == new_name:
            raise OperationInvalid(f"RenameConstraint: {name!r} is already called {new_name!r}")
        self.constraint, self.new_name = name, new_name

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.CONTRACT:
            return []
        # old versions may name the constraint: contract needs fleet proof, even without compat
        return [SQLStep(render(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
            self.table.ident, sql.Identifier(self.constraint), sql.Identifier(self.new_name))),
            role=REMOVES_OLD_DEPENDENCY)]

    def requirements(self) -> list[Requirement]:
        index_name_free = Requirement(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k "
            "JOIN pg_catalog.pg_class c ON c.oid = k.conrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND k.conname = %s AND k.conindid <> 0 "
            "AND k.contype IN ('u', 'p', 'x')) OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class r "
            "JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace "
            "WHERE n.nspname = %s AND r.relname = %s)",
            f"constraint {self.constraint!r} renames its index, and the name {self.new_name!r} "
            f"is taken in schema {self.table.schema}",
            params=[self.table.schema, self.table.name, self.constraint, self.table.schema,
                    self.new_name],
        )
        return [
            req.table_exists(self.table),
            req.constraint_exists(self.table, self.constraint),
            req.constraint_absent(self.table, self.new_name),
            index_name_free,
        ]

    def describe(self) -> str:
        return f"rename constraint {self.constraint} on {self.table} to {self.new_name}"
