"""DropIndex: an index dropped with DROP INDEX CONCURRENTLY at contract.

    ops.DropIndex("orders_legacy_idx")          # or "shop.orders_legacy_idx"

Old app versions may depend on the index for speed (or uniqueness), so it goes
only at contract; CONCURRENTLY waits for running queries instead of blocking them.
"""

from __future__ import annotations

from zdmigrate.ops import _requirements as req
from zdmigrate.ops._names import QualifiedName
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.ops.create_index import drop_index_step
from zdmigrate.phases import Phase
from zdmigrate.steps import Step


class DropIndex(Operation):
    name = "drop_index"
    keeps_table_shape = True

    def __init__(self, name: str, *, schema: str | None = None) -> None:
        self.index = QualifiedName.parse(name, schema, what="index")

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        return [drop_index_step(self.index)] if phase is Phase.CONTRACT else []

    def requirements(self) -> list[Requirement]:
        return [req.index_exists(self.index)]

    def describe(self) -> str:
        return f"drop index {self.index}"
