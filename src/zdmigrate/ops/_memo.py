"""Facts about the schema saved at expand so that rollback can restore them exactly.

An operation's steps are planned without a database, so an operation that
changes something it cannot see (a column's default, its NOT NULL) saves the old
value when it runs: a tiny SQL function ``zdm_<migration>_..._memo()`` in the
table's schema returns them as jsonb. Rollback reads it and drops it; contract
drops it. It is an ordinary, visible object, removed with the migration.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.ops._claims import Claim
from zdmigrate.ops._claims import memo as memo_claim
from zdmigrate.ops._names import QualifiedName, do_block, render
from zdmigrate.ops.base import Operation
from zdmigrate.phases import Phase
from zdmigrate.steps import SQLStep, Step


def function(name: QualifiedName) -> str:
    return render(sql.Identifier(name.schema, name.name))


def save_step(name: QualifiedName, facts: str) -> SQLStep:
    """Save `facts` (an SQL expression of type jsonb, evaluated now) as function `name`."""
    create = render(
        sql.SQL("CREATE FUNCTION {}() RETURNS jsonb LANGUAGE sql IMMUTABLE AS ").format(
            sql.Identifier(name.schema, name.name)
        )
    )
    return SQLStep(
        do_block(
            f"\nBEGIN\n  EXECUTE {render(sql.Literal(create))}"
            f" || quote_literal('SELECT ' || quote_literal(({facts})::text) || '::jsonb');\nEND\n"),
        description=f"save the old state in {name}()",
    )


def read(name: QualifiedName, key: str) -> str:
    """SQL text: the saved fact `key`, as text (NULL when saved as null)."""
    return f"({function(name)}() ->> {render(sql.Literal(key))})"


def drop_step(name: QualifiedName) -> SQLStep:
    return SQLStep(render(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(
        sql.Identifier(name.schema, name.name))))


class MemoOperation(Operation):
    """An operation that changes one thing in place at expand, remembering what it replaced.

    expand saves `_facts` in the memo, then runs `_change`; rolling back expand
    runs `_restore` (which reads the memo) and drops the memo; contract drops it.
    Subclasses name the memo (`_memo`) and say what it holds (`_remembered`).
    """

    keeps_table_shape = True
    table: QualifiedName

    def _memo(self, migration_id: str) -> QualifiedName:
        raise NotImplementedError

    def _facts(self) -> str:
        """SQL jsonb: what `_change` is about to replace."""
        raise NotImplementedError

    def _change(self) -> SQLStep:
        raise NotImplementedError

    def _restore(self, memo: QualifiedName) -> SQLStep:
        """A step that puts back what `memo` saved."""
        raise NotImplementedError

    def _remembered(self) -> str:
        """What the memo holds, in words (for the claim on its name)."""
        raise NotImplementedError

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.EXPAND:
            return [save_step(self._memo(migration_id), self._facts()), self._change()]
        if phase is Phase.CONTRACT:
            return [drop_step(self._memo(migration_id))]
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is not Phase.EXPAND:
            return []
        memo = self._memo(migration_id)
        return [self._restore(memo), drop_step(memo)]

    def claims(self, migration_id: str) -> list[Claim]:
        return [memo_claim(self._memo(migration_id), self._remembered())]
