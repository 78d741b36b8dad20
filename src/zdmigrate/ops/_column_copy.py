"""The shared recipe of RenameColumn and ChangeColumnType: a new column kept in sync.

expand adds the new column (with the old one's collation) and a two-way sync
trigger, and copies the column's CHECK and outgoing FOREIGN KEY constraints onto
it NOT VALID (see `_carry_constraints`); backfill copies old rows (``new =
up(old)``) where the two disagree; switch-read copies the old column's indexes
(and unique constraints) CONCURRENTLY (see `_carry_indexes`), re-points foreign
keys of other tables to the new column and validates every copy; contract first
checks that the old column can be dropped (see `_column_dependents`), then
carries NOT NULL (through a validated CHECK), the default (and a serial
sequence's ownership), the comment, statistics target and options over, makes
the old column nullable (new versions leave it out of their INSERTs, so once the
trigger is gone it must accept NULL until it is dropped, even if the run stops in
between), drops the trigger, the re-pointed originals and the old column, and
gives every copy its original's name.

Surprise: what cannot be carried (a primary key or exclusion constraint on the
column, a generated column computed from it, an identity column) is refused
before expand, never dropped silently.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.ops import _carry_constraints as constraints
from zdmigrate.ops import _carry_indexes as carry
from zdmigrate.ops import _claims
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._claims import Claim
from zdmigrate.ops._column_dependents import contract_guard_step, uncarriable_sql
from zdmigrate.ops._names import QualifiedName, do_block, generated_name, render
from zdmigrate.ops._not_null import (
    column_not_null,
    conditional_set_not_null_steps,
    do_if,
    drop_not_null_sql,
)
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
        if self.new_type is not None and "collate" in self.new_type.lower():
            return SQLStep(render(sql.SQL("{} {}").format(add, sql.SQL(self.new_type))))
        if self.new_type is not None:
            # the old column's collation goes with it when the new type takes one
            collation = (
                "SELECT CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0"
                " AND (SELECT typcollation FROM pg_catalog.pg_type"
                f" WHERE oid = {render(sql.Literal(self.new_type))}::regtype) <> 0"
                " THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END"
                " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
                f" WHERE a.attrelid = {self._regclass()} AND a.attname = {render(sql.Literal(self.old))}"
            )
            typed = render(add) + " " + self.new_type
            return SQLStep(
                do_block(f"\nBEGIN\n  EXECUTE {render(sql.Literal(typed))}"
                f" || coalesce(({collation}), '');\nEND\n"),
                description=f"add column {self.new} {self.new_type}, with the collation of {self.old}",
            )
        type_of_old = (
            "SELECT format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attcollation <> t.typcollation"
            " THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END"
            " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
            f" WHERE a.attrelid = {self._regclass()} AND a.attname = {render(sql.Literal(self.old))}"
        )
        return SQLStep(
            do_block(f"\nBEGIN\n  EXECUTE {render(sql.Literal(render(add) + ' '))} || ({type_of_old});"
            f"\nEND\n"),
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
            do_block(f"\nDECLARE\n  d text;\n  seq text;\nBEGIN\n"
            f"  SELECT pg_get_expr(ad.adbin, ad.adrelid) INTO d FROM pg_catalog.pg_attrdef ad\n"
            f"    JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum\n"
            f"    WHERE ad.adrelid = {self._regclass()} AND a.attname = {old};\n"
            f"  IF d IS NOT NULL THEN\n    EXECUTE {render(sql.Literal(prefix))} || {converted};\n  END IF;\n"
            f"  SELECT pg_get_serial_sequence({render(sql.Literal(render(self.table.ident)))}, {old})"
            f" INTO seq;\n"
            f"  IF seq IS NOT NULL THEN\n    EXECUTE 'ALTER SEQUENCE ' || seq || {owned_by};\n  END IF;\n"
            f"END\n"),
            description=f"carry the default of {self.old} over to {self.new}",
        )

    def _carry_properties(self) -> SQLStep:
        """The old column's comment, statistics target and options, onto the new column."""
        column = render(sql.SQL("{}.{}").format(self.table.ident, sql.Identifier(self.new)))
        alter = render(sql.SQL("ALTER TABLE {} ALTER COLUMN {} ").format(
            self.table.ident, sql.Identifier(self.new)))
        return SQLStep(
            do_block(f"\nDECLARE\n  r record;\nBEGIN\n"
            "  SELECT col_description(attrelid, attnum) AS note, attstattarget AS target,"
            " attoptions AS options INTO r\n    FROM pg_catalog.pg_attribute"
            f" WHERE attrelid = {self._regclass()} AND attname = {render(sql.Literal(self.old))};\n"
            "  IF r.note IS NOT NULL THEN\n"
            f"    EXECUTE format('COMMENT ON COLUMN %s IS %L', {render(sql.Literal(column))}, r.note);\n"
            "  END IF;\n"
            "  IF r.target IS NOT NULL AND r.target >= 0 THEN\n"
            f"    EXECUTE {render(sql.Literal(alter + 'SET STATISTICS '))} || r.target;\n  END IF;\n"
            "  IF r.options IS NOT NULL THEN\n"
            f"    EXECUTE {render(sql.Literal(alter + 'SET ('))} || array_to_string(r.options, ', ')"
            " || ')';\n  END IF;\n"
            f"END\n"),
            description=f"carry the comment, statistics target and options of {self.old} over",
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
            [drop_not_null_sql(self.table, self.old)],
            description=f"let {self.old} take NULL until it is dropped",
        )

    def steps(self, phase: Phase, migration_id: str) -> list[Step]:
        trigger = self._trigger(migration_id)
        if phase is Phase.EXPAND:
            return [self._add_column(), *trigger.create_steps(),
                    constraints.add_copies(self.table, self.old, self.new, self.new_type,
                                           migration_id)]
        if phase is Phase.BACKFILL:
            return [BackfillStep(self.table.name, {self.new: self.up}, where=self._disagree(),
                                 verify=self._disagree(), schema=self.table.schema)]
        if phase is Phase.SWITCH_READ:
            return [
                carry.plan_rebuilt(self.table, self.old, self.new, self.new_type, migration_id),
                carry.copy_indexes(self.table, self.old, self.new, migration_id),
                constraints.repoint_inbound(self.table, self.old, self.new, migration_id),
                constraints.validate_copies(self.table, self.old, migration_id),
            ]
        if phase is Phase.CONTRACT:
            return [
                contract_guard_step(self.table, self.old, self.new, migration_id),
                *conditional_set_not_null_steps(
                    self.table, self.new, generated_name(migration_id, self.new, "nn"),
                    column_not_null(self.table, self.old)),
                self._carry_default(),
                self._carry_properties(),
                self._old_nullable(),
                *trigger.drop_steps(),
                constraints.drop_inbound_originals(self.table, self.old, migration_id),
                SQLStep(render(sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(
                    self.table.ident, sql.Identifier(self.old)))),
                carry.finish_copies(self.table, self.old, migration_id),
                carry.drop_memo(self.table, self.old, migration_id),
                constraints.finish_copies(self.table, self.old, migration_id),
            ]
        return []

    def rollback_steps(self, phase: Phase, migration_id: str) -> list[Step]:
        if phase is Phase.SWITCH_READ:
            return [constraints.drop_inbound_copies(self.table, self.old, migration_id),
                    carry.drop_copies(self.table, self.old, migration_id),
                    carry.drop_memo(self.table, self.old, migration_id)]
        if phase is not Phase.EXPAND:
            return []
        return [
            *self._trigger(migration_id).drop_steps(),
            SQLStep(render(sql.SQL("ALTER TABLE {} DROP COLUMN IF EXISTS {}").format(
                self.table.ident, sql.Identifier(self.new)))),
        ]

    def claims(self, migration_id: str) -> list[Claim]:
        return [
            *_claims.sync_trigger(self.table, self._trigger(migration_id).name),
            _claims.not_null_check(self.table, generated_name(migration_id, self.new, "nn"),
                                   self.new, migration_id),
            _claims.memo(carry.memo_name(self.table, self.old, migration_id),
                         f"the index definitions of {self.old}"),
            carry.copy_claims(self.table, self.old, migration_id),
            constraints.copy_claims(self.table, self.old, migration_id),
        ]

    def contract_requirements(self, migration_id: str) -> list[Requirement]:
        guard = contract_guard_step(self.table, self.old, self.new, migration_id)
        return [Requirement(guard.sql, f"{self.table}.{self.old} cannot be dropped yet",
                            expect="runs")]

    def requirements(self) -> list[Requirement]:
        out = [
            req.table_exists(self.table),
            req.column_exists(self.table, self.old),
            req.column_absent(self.table, self.new),
            Requirement(
                uncarriable_sql(self.table, self.old),
                f"{self.table}.{self.old}: not everything on the column can be carried over to "
                f"{self.new}", expect="runs"),
            Requirement(
                carry.plan_rebuilt(self.table, self.old, self.new, self.new_type, "check").sql,
                f"{self.table}.{self.old}: an index on the column cannot be rebuilt on {self.new}",
                expect="runs"),
        ]
        if self.new_type is not None:
            out += [
                Requirement(
                    constraints.checks_fit_sql(self.table, self.old, self.new, self.new_type),
                    f"{self.table}.{self.old}: a CHECK on the column does not fit type "
                    f"{self.new_type}", expect="runs"),
                Requirement(
                    constraints.foreign_keys_fit_sql(self.table, self.old, self.new_type),
                    f"{self.table}.{self.old}: a foreign key from or to the column cannot use "
                    f"type {self.new_type}", expect="runs"),
            ]
        return out
