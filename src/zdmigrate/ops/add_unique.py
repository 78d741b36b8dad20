"""AddUnique: a unique constraint, built as a unique index CONCURRENTLY, attached at contract.

    ops.AddUnique("users", ["email"])

expand builds the unique index concurrently (it enforces uniqueness from then
on, for every app version); contract turns it into a constraint with ``ADD
CONSTRAINT ... UNIQUE USING INDEX``, an instant. Existing duplicates are
reported before expand.

With `fix` (column -> SQL expression over the row), old app versions may keep
writing duplicates: a trigger rewrites a written key that another row already
holds, backfill rewrites all but the first row (by ctid) of each existing
group, and the unique index is built at switch-read, once no duplicate is left.
Until then a plain index, built concurrently at expand and dropped at
contract, keeps the trigger's lookup from scanning the table on every write.

    ops.AddUnique("users", ["email"], fix={"email": "email || '+' || id"})

Warning: the trigger cannot see a duplicate written by a transaction that has
not committed yet, so two old-version writers racing with the same key can
still leave a pair; the index build at switch-read then fails (its INVALID
leftover is dropped), and backfill, run again, repairs the pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from psycopg import sql

from zdmigrate.ops import _claims
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._claims import Claim
from zdmigrate.ops._fix_rows import duplicate_body, duplicate_exists, parse_fix
from zdmigrate.ops._names import QualifiedName, columns_list, generated_name, render
from zdmigrate.ops._triggers import SyncTrigger
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.ops.create_index import create_index_sql, drop_index_step
from zdmigrate.phases import Phase
from zdmigrate.steps import BackfillStep, SQLStep, Step


def no_duplicates(table: QualifiedName, columns: list[str]) -> Requirement:
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    not_null = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(c))
                                     for c in columns)
    query = sql.SQL(
        "SELECT NOT EXISTS (SELECT 1 FROM {} WHERE {} GROUP BY {} HAVING count(*) > 1)"
    ).format(table.ident, not_null, cols)
    return Requirement(render(query), f"table {table} has duplicate values in ({', '.join(columns)})")


class AddUnique(Operation):
    name = "add_unique"
    keeps_table_shape = True
    kind = "UNIQUE"

    def __init__(
        self, table: str, columns: Sequence[str] | str, *, name: str | None = None,
        fix: Mapping[str, str] | None = None, schema: str | None = None,
    ) -> None:
        self.table = QualifiedName.parse(table, schema)
        self.columns = columns_list(columns)
        self.constraint = name or self.default_name()
        self.fix = parse_fix(fix, f"{type(self).__name__} {self.constraint}")

    def _trigger(self, migration_id: str) -> SyncTrigger | None:
        if not self.fix:
            return None
        return SyncTrigger(self.table, generated_name(migration_id, "unique", self.constraint),
                           duplicate_body(self.table, self.columns, self.fix))

    def _lookup_index(self, migration_id: str) -> QualifiedName:
        return self.table.sibling(generated_name(migration_id, "unique", self.constraint, "lookup"))

    def _build_index(self) -> SQLStep:
        return SQLStep(create_index_sql(self.constraint, self.table, self.columns, unique=True),
                       autocommit=True)

    def default_name(self) -> str:
        return f"{self.table.name}_{'_'.join(self.columns)}_key"

    def contract_steps(self, migration_id: str) -> list[Step]:
        return [SQLStep(render(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} USING INDEX {}").format(
            self.table.ident, sql.Identifier(self.constraint), sql.SQL(self.kind),
            sql.Identifier(self.constraint))))]

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        trigger = self._trigger(migration_id)
        lookup = self._lookup_index(migration_id)
        if phase is Phase.EXPAND and trigger:
            return [SQLStep(create_index_sql(lookup.name, self.table, self.columns), autocommit=True),
                    *trigger.create_steps()]
        if phase is Phase.EXPAND:
            return [self._build_index()]
        if phase is Phase.BACKFILL and trigger:
            later = duplicate_exists(self.table, self.columns, first_kept=True)
            return [BackfillStep(self.table.name, dict(self.fix), where=later, verify=later,
                                 schema=self.table.schema)]
        if phase is Phase.SWITCH_READ and trigger:
            return [self._build_index()]
        if phase is Phase.CONTRACT and trigger:
            return [*self.contract_steps(migration_id), *trigger.drop_steps(), drop_index_step(lookup)]
        if phase is Phase.CONTRACT:
            return self.contract_steps(migration_id)
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        trigger = self._trigger(migration_id)
        index = drop_index_step(self.table.sibling(self.constraint))
        if phase is Phase.EXPAND and trigger:
            return [*trigger.drop_steps(), drop_index_step(self._lookup_index(migration_id))]
        if phase is Phase.EXPAND:
            return [index]
        if phase is Phase.SWITCH_READ and trigger:
            return [index]
        return []

    def requirements(self) -> list[Requirement]:
        return [
            req.table_exists(self.table),
            *(req.column_exists(self.table, c) for c in self.columns),
            req.index_name_free(self.table.sibling(self.constraint)),
            req.constraint_absent(self.table, self.constraint),
            *([] if self.fix else [no_duplicates(self.table, self.columns)]),
            *(req.column_exists(self.table, c) for c in self.fix if c not in self.columns),
            *(req.expression_compiles(self.table, e, f"fix for {c!r}") for c, e in self.fix.items()),
        ]

    def claims(self, migration_id: str) -> list[Claim]:
        trigger = self._trigger(migration_id)
        if not trigger:
            return []
        return [*_claims.sync_trigger(self.table, trigger.name),
                _claims.relation(self._lookup_index(migration_id), "its lookup index", migration_id)]

    def describe(self) -> str:
        return f"add unique {self.constraint} on {self.table}"
