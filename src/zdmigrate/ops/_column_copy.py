"""The shared recipe of RenameColumn and ChangeColumnType: a new column kept in sync.

expand adds the new column and a two-way sync trigger; backfill copies old rows
(``new = up(old)``) where the two disagree; contract carries NOT NULL (through a
validated CHECK) and the default (and a serial sequence's ownership) over to the
new column, makes the old column nullable (new versions leave it out of their
INSERTs, so once the trigger is gone it must accept NULL until it is dropped, even
if the run stops in between), drops the trigger and then the old column.

switch-read copies the old column's indexes (and unique constraints) onto the new
column, CONCURRENTLY, before readers move to it; contract gives the copies the
old names (see `_carry_indexes`).

Surprise: indexes with expressions or predicates, and a primary key that includes
the old column, are not carried over: add a CreateIndex / AddPrimaryKey on the new
column. Identity columns cannot be copied this way.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.ops import _carry_indexes as carry
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._names import QualifiedName, dollar_quoted, generated_name, render
from zdmigrate.ops._not_null import column_not_null, conditional_set_not_null_steps, do_if
from zdmigrate.ops._triggers import SyncTrigger, two_way_body
from zdmigrate.ops.base import Operation, Requirement
from zdmigrate.phases import Phase
from zdmigrate.steps import BackfillStep, SQLStep, Step


class ColumnCopy(Operation):
    """Base for operations that move a column's data into a new column."""

    table: QualifiedName
    old: str
    new: str
    up: str
    down: str
    #: SQL type of the new column; None copies the old column's type and collation.
    new_type: str | None = None
    tag = "copy"

    def _trigger(self, migration_id: str) -> SyncTrigger:
        return SyncTrigger(self.table, generated_name(migration_id, self.tag, self.old),
                           two_way_body(self.old, self.new, self.up, self.down))

    def _regclass(self) -> str:
        return render(sql.SQL("{}::regclass").format(sql.Literal(render(self.table.ident))))

    def _add_column(self) -> SQLStep:
        add = sql.SQL("ALTER TABLE {} ADD COLUMN {}").format(
            self.table.ident, sql.Identifier(self.new))
        if self.new_type is not None:
            return SQLStep(render(sql.SQL("{} {}").format(add, sql.SQL(self.new_type))))
        type_of_old = (
            "SELECT format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attcollation <> t.typcollation"
            " THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END"
            " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
            f" WHERE a.attrelid = {self._regclass()} AND a.attname = {render(sql.Literal(self.old))}"
        )
        return SQLStep(
            "DO " + dollar_quoted(
                f"\nBEGIN\n  EXECUTE {render(sql.Literal(render(add) + ' '))} || ({type_of_old});"
                "\nEND\n"),
            description=f"add column {self.new} with the type of {self.old}",
        )

    def _disagree(self) -> str:
        return render(sql.SQL("{} IS DISTINCT FROM ({}) AND {} IS DISTINCT FROM ({})").format(
            sql.Identifier(self.new), sql.SQL(self.up),
            sql.Identifier(self.old), sql.SQL(self.down)))

    def _carry_default(self) -> SQLStep:
        """Move the old column's default, and a serial sequence's ownership, to the new column."""
        prefix = render(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT ").format(
            self.table.ident, sql.Identifier(self.new)))
        converted = "d" if self.new_type is None else f"'(' || d || ')::' || {render(sql.Literal(self.new_type))}"
        owned_by = render(sql.Literal(
            " OWNED BY " + render(sql.SQL("{}.{}").format(self.table.ident, sql.Identifier(self.new)))))
        old = render(sql.Literal(self.old))
        return SQLStep(
            "DO " + dollar_quoted(
            "\nDECLARE\n  d text;\n  seq text;\nBEGIN\n"
            f"  SELECT pg_get_expr(ad.adbin, ad.adrelid) INTO d FROM pg_catalog.pg_attrdef ad\n"
            f"    JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum\n"
            f"    WHERE ad.adrelid = {self._regclass()} AND a.attname = {old};\n"
            f"  IF d IS NOT NULL THEN\n    EXECUTE {render(sql.Literal(prefix))} || {converted};\n  END IF;\n"
            f"  SELECT pg_get_serial_sequence({render(sql.Literal(render(self.table.ident)))}, {old})"
            f" INTO seq;\n"
            f"  IF seq IS NOT NULL THEN\n    EXECUTE 'ALTER SEQUENCE ' || seq || {owned_by};\n  END IF;\n"
            "END\n"),
            description=f"carry the default of {self.old} over to {self.new}",
        )

    def _old_nullable(self) -> SQLStep:
        """DROP NOT NULL on the old column, unless a primary key or replica identity needs it."""
        keyed = render(sql.SQL(
            "EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = {} "
            "AND (i.indisprimary OR i.indisreplident) AND a.attname = {})"
        ).format(sql.SQL(self._regclass()), sql.Literal(self.old)))
        return do_if(
            f"{column_not_null(self.table, self.old)} AND NOT {keyed}",
            [render(sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(
                self.table.ident, sql.Identifier(self.old)))],
            description=f"let {self.old} take NULL until it is dropped",
        )

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        trigger = self._trigger(migration_id)
        if phase is Phase.EXPAND:
            return [self._add_column(), *trigger.create_steps()]
        if phase is Phase.BACKFILL:
            return [BackfillStep(self.table.name, {self.new: self.up}, where=self._disagree(),
                                 verify=self._disagree(), schema=self.table.schema)]
        if phase is Phase.SWITCH_READ:
            return [carry.copy_indexes(self.table, self.old, self.new, migration_id)]
        if phase is Phase.CONTRACT:
            return [
                *conditional_set_not_null_steps(
                    self.table, self.new, generated_name(migration_id, self.new, "nn"),
                    column_not_null(self.table, self.old)),
                self._carry_default(),
                self._old_nullable(),
                *trigger.drop_steps(),
                SQLStep(render(sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(
                    self.table.ident, sql.Identifier(self.old)))),
                carry.finish_copies(self.table, migration_id, self.new),
            ]
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.SWITCH_READ:
            return [carry.drop_copies(self.table, migration_id, self.new)]
        if phase is not Phase.EXPAND:
            return []
        return [
            *self._trigger(migration_id).drop_steps(),
            SQLStep(render(sql.SQL("ALTER TABLE {} DROP COLUMN IF EXISTS {}").format(
                self.table.ident, sql.Identifier(self.new)))),
        ]

    def requirements(self) -> list[Requirement]:
        return [
            req.table_exists(self.table),
            req.column_exists(self.table, self.old),
            req.column_absent(self.table, self.new),
        ]
