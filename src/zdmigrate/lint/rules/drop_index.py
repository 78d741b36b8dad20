"""drop-index: DROP INDEX before contract can take away what old queries rely on."""

from __future__ import annotations

from zdmigrate.lint._state import LintState
from zdmigrate.lint.rules._base import Example
from zdmigrate.lint.rules._drop import DropRule
from zdmigrate.phases import Phase


class DropIndex(DropRule):
    id = "drop-index"
    summary = "DROP INDEX outside the contract phase"
    why = (
        "The running app version's queries may depend on the index for speed (a seq "
        "scan under load is an outage), and a unique index for ON CONFLICT or correctness."
    )
    fix = "drop the index in the contract phase, with DROP INDEX CONCURRENTLY."
    remove_types = ("OBJECT_INDEX",)
    noun = "INDEX"
    bad = (Example("DROP INDEX CONCURRENTLY orders_created_at_idx;"),)
    good = (Example("DROP INDEX CONCURRENTLY orders_created_at_idx;", phase=Phase.CONTRACT),)

    def table_of(self, name: str, state: LintState) -> str | None:
        return state.index_tables.get(name.rsplit(".", 1)[-1])
