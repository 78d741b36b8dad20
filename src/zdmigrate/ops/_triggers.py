"""Sync triggers: PL/pgSQL that keeps an old and a new shape of a row in agreement.

While two app versions run side by side, each writes only the shape it knows.
A ``BEFORE INSERT OR UPDATE`` row trigger fills in the other shape, so both
versions read consistent data whoever wrote the row. One function per
operation, named after the migration (``zdm_<migration>_<what>``), created in the
table's schema and always called schema-qualified; it never depends on
search_path.

Why these triggers cannot loop: a BEFORE trigger changes only ``NEW`` and runs
no statement of its own. Why they are right under concurrent writers: the
trigger sees the row version it replaces (``OLD``) under the row lock, so each
writer's change is judged against the latest committed row.

Warning: creating or dropping a trigger takes a SHARE ROW EXCLUSIVE lock on the
table for an instant; the engine runs each step under lock_timeout.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from zdmigrate.ops._expressions import on_record
from zdmigrate.ops._names import QualifiedName, dollar_quoted, render
from zdmigrate.steps import REMOVES_OLD_DEPENDENCY, SQLStep


@dataclass(frozen=True)
class SyncTrigger:
    """A trigger function and its trigger, both named `name`, on `table`."""

    table: QualifiedName
    name: str
    body: str  # PL/pgSQL statements run before ``RETURN NEW``

    @property
    def function(self) -> sql.Identifier:
        return sql.Identifier(self.table.schema, self.name)

    def create_steps(self) -> list[SQLStep]:
        function = render(
            sql.SQL("CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS ").format(self.function)
        ) + dollar_quoted(f"\nBEGIN\n{self.body}\n  RETURN NEW;\nEND\n")
        trigger = render(
            sql.SQL(
                "CREATE TRIGGER {} BEFORE INSERT OR UPDATE ON {} "
                "FOR EACH ROW EXECUTE FUNCTION {}()"
            ).format(sql.Identifier(self.name), self.table.ident, self.function)
        )
        return [
            SQLStep(function, description=f"sync function {self.name}"),
            SQLStep(trigger, description=f"sync trigger {self.name} on {self.table}"),
        ]

    def drop_steps(self) -> list[SQLStep]:
        """Drop trigger and function. At contract this takes away what old app versions
        rely on (their writes synced, filled or fixed), so the step says so."""
        return [
            SQLStep(render(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                sql.Identifier(self.name), self.table.ident)), role=REMOVES_OLD_DEPENDENCY),
            SQLStep(render(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(self.function))),
        ]


def _field(record: str, column: str) -> str:
    return render(sql.SQL(record + ".{}").format(sql.Identifier(column)))


def two_way_body(old: str, new: str, up: str, down: str) -> str:
    """Keep column `old` and column `new` in agreement: new = up(old), old = down(new).

    The two agree when ``new = up(old)`` or ``old = down(new)`` (either way round,
    so a lossy conversion does not rewrite data that already agrees).

    - INSERT: a writer that left `new` NULL does not know it: new := up(old).
      Otherwise the writer knows `new`; if old disagrees it holds NULL or a column
      default, so old := down(new). A writer that set both consistently keeps both.
    - UPDATE: copy from the side the writer changed (compared with OLD); when the
      writer changed both, or neither, keep the row as written.
    """
    n_old, n_new = _field("NEW", old), _field("NEW", new)
    o_old, o_new = _field("OLD", old), _field("OLD", new)
    up_new, down_new = on_record(up, "new"), on_record(down, "new")
    agree = f"({n_new} IS NOT DISTINCT FROM ({up_new}) OR {n_old} IS NOT DISTINCT FROM ({down_new}))"
    return (
        "  IF TG_OP = 'INSERT' THEN\n"
        f"    IF {n_new} IS NULL THEN\n"
        f"      {n_new} := ({up_new});\n"
        f"    ELSIF NOT {agree} THEN\n"
        f"      {n_old} := ({down_new});\n"
        "    END IF;\n"
        f"  ELSIF {n_old} IS DISTINCT FROM {o_old} AND {n_new} IS NOT DISTINCT FROM {o_new} THEN\n"
        f"    IF NOT {agree} THEN\n"
        f"      {n_new} := ({up_new});\n"
        "    END IF;\n"
        f"  ELSIF {n_new} IS DISTINCT FROM {o_new} AND {n_old} IS NOT DISTINCT FROM {o_old} THEN\n"
        f"    IF NOT {agree} THEN\n"
        f"      {n_old} := ({down_new});\n"
        "    END IF;\n"
        "  END IF;"
    )


def derived_body(column: str, expr: str) -> str:
    """Keep `column` filled from `expr` for writers that do not know the column.

    - INSERT: a NULL `column` is filled with expr.
    - UPDATE that leaves `column` as it was: if it held the derived value (or
      NULL) it is recomputed from the new row, so it follows the columns it is
      derived from; a value a writer chose on purpose is kept.
    """
    n_col, o_col = _field("NEW", column), _field("OLD", column)
    expr_new, expr_old = on_record(expr, "new"), on_record(expr, "old")
    return (
        "  IF TG_OP = 'INSERT' THEN\n"
        f"    IF {n_col} IS NULL THEN\n"
        f"      {n_col} := ({expr_new});\n"
        "    END IF;\n"
        f"  ELSIF {n_col} IS NOT DISTINCT FROM {o_col}\n"
        f"      AND ({o_col} IS NULL OR {o_col} IS NOT DISTINCT FROM ({expr_old})) THEN\n"
        f"    {n_col} := ({expr_new});\n"
        "  END IF;"
    )


def fill_null_body(column: str, expr: str) -> str:
    """Replace a NULL written into `column` by `expr` (SetNotNull)."""
    n_col = _field("NEW", column)
    return f"  IF {n_col} IS NULL THEN\n    {n_col} := ({on_record(expr, 'new')});\n  END IF;"


def fix_body(check: str, fixes: dict[str, str]) -> str:
    """Where `check` is false for the written row, apply `fixes` (AddCheck with fix)."""
    assignments = "\n".join(
        f"    {_field('NEW', col)} := ({on_record(expr, 'new')});" for col, expr in fixes.items()
    )
    return f"  IF ({on_record(check, 'new')}) IS FALSE THEN\n{assignments}\n  END IF;"
