"""AddForeignKey: a foreign key added NOT VALID at expand and validated at switch-read.

    ops.AddForeignKey("orders", ["user_id"], "users", ["id"], on_delete="CASCADE")
    ops.AddForeignKey("orders", ["user_id"], "users", ["id"], fix={"user_id": "NULL"})

``ADD CONSTRAINT ... NOT VALID`` is an instant (it checks only new rows); the
scan of existing rows happens in ``VALIDATE CONSTRAINT`` at switch-read, which
lets reads and writes go on. Rolling back switch-read makes the key NOT VALID again.

Without `fix`, every write (old app versions too) must satisfy the key from
expand on. With `fix` (column -> SQL expression over the row), a trigger
rewrites a row an old app version writes with a missing reference, and backfill
rewrites existing such rows, so nobody's write fails and VALIDATE succeeds;
contract drops the trigger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from psycopg import sql

from zdmigrate.errors import OperationInvalid
from zdmigrate.ops import _requirements as req
from zdmigrate.ops._fix_rows import parse_fix, references_present
from zdmigrate.ops._names import QualifiedName, columns_list, do_block, generated_name, render
from zdmigrate.ops._not_valid import NotValidConstraint
from zdmigrate.ops._triggers import SyncTrigger, fix_body
from zdmigrate.ops.base import Requirement

_ACTIONS = {"CASCADE", "RESTRICT", "SET NULL", "SET DEFAULT", "NO ACTION"}


def no_dangling_rows(
    table: QualifiedName, columns: list[str], ref_table: QualifiedName, ref_columns: list[str]
) -> Requirement:
    """No row of `table` has a key (all of `columns` set) that no row of `ref_table` has.

    A DO block that fails with the number of such rows and a sample of their keys.
    """
    present = sql.SQL(" AND ").join(
        sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(col)) for col in columns)
    match = sql.SQL(" AND ").join(
        sql.SQL("p.{} = c.{}").format(sql.Identifier(rc), sql.Identifier(col))
        for col, rc in zip(columns, ref_columns, strict=True))
    keys = sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(col)) for col in columns)
    query = sql.SQL(
        "SELECT count(*), string_agg(k, ', ') FILTER (WHERE rn <= 5) FROM ("
        "SELECT format('(%s)', concat_ws(', ', {keys})) AS k, row_number() OVER () AS rn "
        "FROM {table} AS c WHERE {present} AND NOT EXISTS "
        "(SELECT 1 FROM {ref} AS p WHERE {match})) AS d"
    ).format(keys=keys, table=table.ident, present=present, ref=ref_table.ident, match=match)
    return Requirement(
        do_block(f"\nDECLARE\n  n bigint;\n  sample text;\nBEGIN\n  {render(query)} INTO n, sample;\n"
        f"  IF n > 0 THEN\n    RAISE EXCEPTION '% row(s), e.g. %', n, sample;\n  END IF;\n"
        # a missing table or column is reported by the other requirements
        f"EXCEPTION WHEN undefined_table OR undefined_column THEN NULL;\nEND\n"),
        f"table {table} has rows whose ({', '.join(columns)}) match no row of {ref_table}",
        expect="runs",
    )


class AddForeignKey(NotValidConstraint):
    name = "add_foreign_key"
    kind = "foreign key"

    def __init__(
        self,
        table: str,
        columns: Sequence[str] | str,
        ref_table: str,
        ref_columns: Sequence[str] | str,
        *,
        name: str | None = None,
        on_delete: str | None = None,
        fix: Mapping[str, str] | None = None,
        schema: str | None = None,
        ref_schema: str | None = None,
    ) -> None:
        self.table = QualifiedName.parse(table, schema)
        self.ref_table = QualifiedName.parse(ref_table, ref_schema)
        self.columns = columns_list(columns)
        self.ref_columns = columns_list(ref_columns)
        if len(self.columns) != len(self.ref_columns):
            raise OperationInvalid(
                f"AddForeignKey on {self.table}: {len(self.columns)} columns reference "
                f"{len(self.ref_columns)} columns of {self.ref_table}")
        self.constraint = name or f"{self.table.name}_{'_'.join(self.columns)}_fkey"
        if on_delete is not None and on_delete.upper() not in _ACTIONS:
            raise OperationInvalid(
                f"AddForeignKey {self.constraint}: on_delete {on_delete!r} is not one of "
                f"{', '.join(sorted(_ACTIONS))}")
        self.on_delete = on_delete.upper() if on_delete else None
        self.fix = parse_fix(fix, f"AddForeignKey {self.constraint}")

    def _trigger(self, migration_id: str) -> SyncTrigger | None:
        if not self.fix:
            return None
        present = references_present(self.columns, self.ref_table, self.ref_columns)
        return SyncTrigger(self.table, generated_name(migration_id, "fk", self.constraint),
                           fix_body(present, self.fix))

    def _add(self) -> str:
        return render(sql.SQL(
            "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}){} NOT VALID"
        ).format(
            self.table.ident, sql.Identifier(self.constraint),
            sql.SQL(", ").join(map(sql.Identifier, self.columns)), self.ref_table.ident,
            sql.SQL(", ").join(map(sql.Identifier, self.ref_columns)),
            sql.SQL(f" ON DELETE {self.on_delete}" if self.on_delete else ""),
        ))

    def _violated(self) -> str:
        present = references_present(self.columns, self.ref_table, self.ref_columns,
                                     outer=self.table)
        return f"{present} IS FALSE"

    def requirements(self) -> list[Requirement]:
        return [
            req.table_exists(self.table),
            req.table_exists(self.ref_table),
            *(req.column_exists(self.table, c) for c in self.columns),
            *(req.column_exists(self.ref_table, c) for c in self.ref_columns),
            req.constraint_absent(self.table, self.constraint),
            # with `fix`, backfill repairs dangling rows: they are not an error
            *([] if self.fix else [
                no_dangling_rows(self.table, self.columns, self.ref_table, self.ref_columns)]),
            *(req.column_exists(self.table, c) for c in self.fix if c not in self.columns),
            *(req.expression_compiles(self.table, e, f"fix for {c!r}") for c, e in self.fix.items()),
        ]

    def describe(self) -> str:
        return f"add foreign key {self.constraint} on {self.table}"
