"""Version schemas: a schema of views that shows a migration's new names at no cost.

A rename in view mode touches no row. At expand it creates (once per
migration) the schema ``zdm_<revision>`` (see `schema_name`) and in it one
simple view per renamed table, ``SELECT * FROM <table>`` with the new names
(renamed columns via ``ALTER VIEW ... RENAME COLUMN``, a renamed table by the
view's own name). PostgreSQL makes such a view automatically updatable, so an
app version that puts the schema first on its search_path reads and writes the
new names; older versions keep using the physical table. At contract one short
transaction locks the schema's views (before the table, the order a query takes
them, so it cannot deadlock with one), renames the physical column or table and
drops every view whose names now match its table (and the schema once it is
empty), so a session whose search_path still names the schema resolves its next
statement to the renamed table: PostgreSQL skips a search_path entry that does
not exist.

Each step finds "the view of this table" in the catalog (through the view's
rewrite rule), so several renames of one table in one migration share one view
whichever order they are listed in, and the view is dropped by the contract
step of the last of them.

A migration with ``version_schema = True`` gets, at the end of expand, one view
per table whose new shape differs from the table (`shape_view_step`): the
table's columns then, without those its operations drop, under their new
names, so any mix of operations a view can show (see `Operation.new_shape`).
Those views are dropped by the migration's last contract step
(`drop_shape_views_step`), and first when expand is undone.

Warnings:
- the view lists the table's columns as they were at expand: a column added
  later (before contract) is not visible under the new names (a later
  migration that adds one is refused: `not_viewed_elsewhere`);
- only unqualified names go through the search_path: ``shop.users`` written
  with its schema reaches the table, not the view;
- contract takes ACCESS EXCLUSIVE on the table for an instant (the rename);
  the engine runs it under lock_timeout with retries.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Mapping

from psycopg import sql

from zdmigrate.ops import _claims
from zdmigrate.ops._claims import VERSION_SCHEMA_MARK, Claim
from zdmigrate.ops._names import QualifiedName, do_block, generated_name, render
from zdmigrate.ops.base import Requirement, Shape
from zdmigrate.steps import SQLStep

#: Every version schema's comment starts with this JSON key (see `comment`).
MARKER_KEY = VERSION_SCHEMA_MARK


class ViewMode:
    """For a rename with a `mode`: in ``view`` mode it serves the new names through a
    version schema, so no app needs to dual-write (a base listed before `Operation`)."""

    mode: str

    @property
    def uses_version_schema(self) -> bool:
        return self.mode == "view"

    @property
    def sync_triggers(self) -> bool:
        """In view mode the database serves both names: no app needs to dual-write."""
        return self.mode == "view"


def schema_name(migration_id: str) -> str:
    """``zdm_<revision>``, cut to 63 bytes with a hash of the whole name when longer."""
    return generated_name(migration_id)


def schema_claim(migration_id: str) -> Claim:
    """The version schema's name: free, or already the version schema of this migration."""
    return _claims.schema(schema_name(migration_id), "its version schema", migration_id)


def comment(migration_id: str, read_new_from: Mapping[str, str] | None = None) -> str:
    """The schema's comment: JSON naming the migration and, per app, the first version
    that reads the new names (from the migration's compat). The runtime reads it."""
    return json.dumps({MARKER_KEY: migration_id, "read_new_from": dict(read_new_from or {})})


def _marker_prefix(migration_id: str) -> str:
    return json.dumps({MARKER_KEY: migration_id})[:-1]


def comment_step(migration_id: str, read_new_from: Mapping[str, str]) -> SQLStep:
    """Record which app versions read the new names, for the runtime and `status`."""
    return SQLStep(
        render(sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
            sql.Identifier(schema_name(migration_id)),
            sql.Literal(comment(migration_id, read_new_from)))),
        description=f"version schema {schema_name(migration_id)}: which app versions use it",
    )


def _declare(migration_id: str, table: QualifiedName | None) -> str:
    tbl = (f"  tbl regclass := to_regclass({render(sql.Literal(render(table.ident)))});\n"
           if table is not None else "")
    return (
        "DECLARE\n"
        f"  vs text := {render(sql.Literal(schema_name(migration_id)))};\n"
        f"{tbl}  ns oid;\n  v oid;\n  g record;\n"
    )


# The view in schema `ns` that selects from table `tbl` (found via its rewrite rule).
_FIND_VIEW = (
    "  SELECT c.oid INTO v FROM pg_catalog.pg_class c\n"
    "    JOIN pg_catalog.pg_rewrite r ON r.ev_class = c.oid\n"
    "    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass\n"
    "      AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass\n"
    "      AND d.refobjid = tbl\n"
    "    WHERE c.relnamespace = ns AND c.relkind = 'v' LIMIT 1;\n"
)

# The end of a cleanup of version schema `vs` (oid `ns`): drop the schema once
# nothing is left in it, and close the caller's ``IF ns IS NOT NULL THEN``.
_DROP_SCHEMA_IF_EMPTY = (
    "    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend\n"
    "        WHERE refclassid = 'pg_catalog.pg_namespace'::regclass AND refobjid = ns) THEN\n"
    "      EXECUTE format('DROP SCHEMA %I', vs);\n"
    "    END IF;\n"
    "  END IF;\n"
)

# Drop every view of the schema whose name and column names match its table
# (nothing left to rename), then the schema once nothing is in it.
_CLEANUP = (
    "  ns := to_regnamespace(quote_ident(vs));\n"
    "  IF ns IS NOT NULL THEN\n"
    "    FOR g IN SELECT DISTINCT c.oid AS view, c.relname AS name, t.oid AS base, t.relname AS base_name\n"
    "        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_rewrite r ON r.ev_class = c.oid\n"
    "        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass\n"
    "          AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass\n"
    "        JOIN pg_catalog.pg_class t ON t.oid = d.refobjid AND t.relkind IN ('r', 'p')\n"
    "        WHERE c.relnamespace = ns AND c.relkind = 'v'\n"
    # a view of the new shape (version_schema = True) goes at the end of contract
    "          AND coalesce(obj_description(c.oid, 'pg_class'), '') NOT LIKE '{\"zdmigrate_new_shape\"%'\n"
    "        LOOP\n"
    "      IF g.name = g.base_name AND NOT EXISTS (\n"
    "          SELECT 1 FROM pg_catalog.pg_attribute va WHERE va.attrelid = g.view\n"
    "            AND va.attnum > 0 AND NOT va.attisdropped AND NOT EXISTS (\n"
    "              SELECT 1 FROM pg_catalog.pg_attribute ba WHERE ba.attrelid = g.base\n"
    "                AND ba.attname = va.attname AND NOT ba.attisdropped)) THEN\n"
    "        EXECUTE format('DROP VIEW %I.%I', vs, g.name);\n"
    "      END IF;\n"
    "    END LOOP;\n"
    + _DROP_SCHEMA_IF_EMPTY
)


# Lock the schema's views before the table: a new-version query locks the view and
# then the table, so taking them in the other order could deadlock with it (and the
# deadlock detector might cancel the app's query). LOCK on a view locks its tables too.
_LOCK_VIEWS = (
    "  FOR g IN SELECT c.oid FROM pg_catalog.pg_class c\n"
    "      WHERE c.relnamespace = to_regnamespace(quote_ident(vs)) AND c.relkind = 'v'\n"
    "      ORDER BY c.oid LOOP\n"
    "    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', g.oid::regclass);\n"
    "  END LOOP;\n"
)


# On PostgreSQL 15+ the view `v` checks privileges and row security as the app's
# role (security_invoker), except on a table without row security that has
# column-level grants: a security_invoker view needs the role's privilege on every
# column it selects, so a role granted some columns could not use it; there the
# view's own (copied) grants are checked and the table is read as the view's owner.
_SECURITY_INVOKER = (
    "  IF current_setting('server_version_num')::int >= 150000 AND (\n"
    "      (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = tbl)\n"
    "      OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = tbl\n"
    "        AND attnum > 0 AND NOT attisdropped AND attacl IS NOT NULL)) THEN\n"
    "    EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', v::regclass);\n"
    "  END IF;\n"
)

# Give the view `v` the grants of table `tbl`: table-level ones, and column-level
# ones on the columns it shows (under their names in the view: {shown} maps a
# table column to its name there); every grantee gets USAGE on the schema.
_GRANTS = (
    "  FOR g IN SELECT a.grantee, a.privilege_type, NULL::text AS col FROM pg_catalog.pg_class c,\n"
    "      aclexplode(c.relacl) a WHERE c.oid = tbl AND a.grantee <> c.relowner\n"
    "    UNION ALL SELECT x.grantee, x.privilege_type, coalesce({shown} ->> b.attname, b.attname)\n"
    "      FROM pg_catalog.pg_attribute b, aclexplode(b.attacl) x\n"
    "      WHERE b.attrelid = tbl AND b.attnum > 0 AND NOT b.attisdropped AND b.attacl IS NOT NULL\n"
    "  LOOP\n"
    "    CONTINUE WHEN g.col IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute\n"
    "      WHERE attrelid = v AND attname = g.col AND attnum > 0 AND NOT attisdropped);\n"
    "    EXECUTE format('GRANT %s%s ON %s TO %s', g.privilege_type,\n"
    "      CASE WHEN g.col IS NULL THEN '' ELSE format(' (%I)', g.col) END, v::regclass,\n"
    "      CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);\n"
    "    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %s', vs,\n"
    "      CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);\n"
    "  END LOOP;\n"
)


def _do(migration_id: str, table: QualifiedName, body: str) -> str:
    return do_block(f"\n{_declare(migration_id, table)}BEGIN\n{body}END\n")


def view_sql(migration_id: str, table: QualifiedName, view: str,
             renames: Mapping[str, str]) -> str:
    """What the view is, shown by `plan` as a comment line."""
    shown = sql.SQL(", ").join(
        sql.SQL("{} as {}").format(sql.Identifier(o), sql.Identifier(n))
        for o, n in renames.items())
    return render(sql.SQL("-- view {}: SELECT * FROM {}{}{}").format(
        sql.Identifier(schema_name(migration_id), view), table.ident,
        sql.SQL(", showing " if renames else ""), shown))


def expand_step(migration_id: str, table: QualifiedName, *, view_name: str | None = None,
                column: tuple[str, str] | None = None) -> SQLStep:
    """Create the version schema and the view of `table` if missing, then rename in it.

    `view_name` renames the view (a table rename); `column` = (old, new) renames
    one of its columns. The view copies the table's grants (and the grantees get
    USAGE on the schema); on PostgreSQL 15+ it is ``security_invoker``, so row
    security and privileges are checked against the app's role as on the table.
    """
    vs_lit = render(sql.Literal(schema_name(migration_id)))
    marker = render(sql.Literal(_marker_prefix(migration_id)))
    first = render(sql.Literal(comment(migration_id)))
    shown_view = view_name or table.name
    body = (
        f"  ns := to_regnamespace(quote_ident(vs));\n"
        "  IF ns IS NULL THEN\n"
        "    EXECUTE format('CREATE SCHEMA %I', vs);\n"
        f"    EXECUTE format('COMMENT ON SCHEMA %I IS %L', vs, {first});\n"
        "    ns := to_regnamespace(quote_ident(vs));\n"
        f"  ELSIF left(coalesce(obj_description(ns, 'pg_namespace'), ''), {len(_marker_prefix(migration_id))})"
        f" <> {marker} THEN\n"
        f"    RAISE EXCEPTION 'schema % exists and is not the version schema of migration %', vs, "
        f"{render(sql.Literal(migration_id))};\n"
        "  END IF;\n"
        + _FIND_VIEW +
        "  IF v IS NULL THEN\n"
        f"    IF to_regclass(format('%I.%I', vs, {render(sql.Literal(shown_view))})) IS NOT NULL THEN\n"
        f"      RAISE EXCEPTION 'version schema % already has a relation called %', {vs_lit}, "
        f"{render(sql.Literal(shown_view))};\n"
        "    END IF;\n"
        f"    EXECUTE format('CREATE VIEW %I.%I AS SELECT * FROM %s', vs, "
        f"{render(sql.Literal(shown_view))}, tbl);\n"
        f"    v := to_regclass(format('%I.%I', vs, {render(sql.Literal(shown_view))}));\n"
        + textwrap.indent(_SECURITY_INVOKER + _GRANTS.format(shown="'{}'::jsonb"), "  ") +
        "  END IF;\n"
    )
    if view_name is not None:
        body += (
            f"  IF (SELECT relname FROM pg_catalog.pg_class WHERE oid = v) <> "
            f"{render(sql.Literal(view_name))} THEN\n"
            f"    EXECUTE format('ALTER VIEW %s RENAME TO %I', v::regclass, "
            f"{render(sql.Literal(view_name))});\n"
            "  END IF;\n"
        )
    if column is not None:
        body += _rename_view_column(*column)
    renames = {column[0]: column[1]} if column else {}
    header = view_sql(migration_id, table, shown_view, renames)
    return SQLStep(f"{header}\n{_do(migration_id, table, body)}",
                   description=f"view {shown_view} in version schema {schema_name(migration_id)}")


def _rename_view_column(old: str, new: str) -> str:
    return (
        "  IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = v\n"
        f"      AND attname = {render(sql.Literal(old))} AND NOT attisdropped) THEN\n"
        f"    EXECUTE format('ALTER VIEW %s RENAME COLUMN %I TO %I', v::regclass, "
        f"{render(sql.Literal(old))}, {render(sql.Literal(new))});\n"
        "  END IF;\n"
    )


def rollback_step(migration_id: str, table: QualifiedName, *, view_name: str | None = None,
                  column: tuple[str, str] | None = None) -> SQLStep:
    """Undo `expand_step`'s rename in the view; drop the view and schema once unneeded."""
    body = "  ns := to_regnamespace(quote_ident(vs));\n  IF ns IS NOT NULL AND tbl IS NOT NULL THEN\n"
    body += textwrap.indent(_FIND_VIEW, "  ")
    body += "    IF v IS NOT NULL THEN\n"
    if column is not None:
        body += textwrap.indent(_rename_view_column(column[1], column[0]), "    ")
    if view_name is not None:
        body += (
            "      EXECUTE format('ALTER VIEW %s RENAME TO %I', v::regclass,\n"
            "        (SELECT relname FROM pg_catalog.pg_class WHERE oid = tbl));\n"
        )
    body += "    END IF;\n  END IF;\n" + _CLEANUP
    return SQLStep(_do(migration_id, table, body),
                   description=f"undo the rename in version schema {schema_name(migration_id)}")


def contract_step(migration_id: str, table: QualifiedName, rename: sql.Composable,
                  what: str) -> SQLStep:
    """The swap, one transaction: the physical rename, then drop what is no longer needed."""
    return SQLStep(
        f"{_do(migration_id, table, _LOCK_VIEWS)};\n{render(rename)};\n"
        f"{_do(migration_id, table, _CLEANUP)}",
        description=f"{what}; drop its view in {schema_name(migration_id)}, in one transaction",
    )


def contract_column_step(migration_id: str, table: QualifiedName, old: str, new: str) -> SQLStep:
    """The swap of a column rename, one transaction: rename the physical column, then
    drop what is no longer needed.

    The rename is a plain statement (``ALTER TABLE IF EXISTS``), so the linter and
    the fleet check see a destructive contract. When a RenameTable of the same
    migration already renamed the table, the DO block finds it as the base of
    the view that shows `new` over `old` and renames the column there.
    """
    rename = render(sql.SQL("ALTER TABLE IF EXISTS {} RENAME COLUMN {} TO {}").format(
        table.ident, sql.Identifier(old), sql.Identifier(new)))
    o, n = render(sql.Literal(old)), render(sql.Literal(new))
    body = (
        "  IF tbl IS NULL THEN\n"
        "    SELECT d.refobjid INTO tbl FROM pg_catalog.pg_class c\n"
        "      JOIN pg_catalog.pg_rewrite r ON r.ev_class = c.oid\n"
        "      JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass\n"
        "        AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass\n"
        "      JOIN pg_catalog.pg_class t ON t.oid = d.refobjid AND t.relkind IN ('r', 'p')\n"
        f"     WHERE c.relnamespace = to_regnamespace(quote_ident(vs)) AND c.relkind = 'v'\n"
        f"       AND t.relnamespace = to_regnamespace({render(sql.Literal(table.schema))})\n"
        f"       AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = c.oid AND attname = {n})\n"
        f"       AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = t.oid AND attname = {o})\n"
        "     LIMIT 1;\n"
        "  END IF;\n"
        "  IF tbl IS NULL THEN\n"
        f"    RAISE EXCEPTION 'table % not found', {render(sql.Literal(str(table)))};\n"
        "  END IF;\n"
        f"  IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = tbl AND attname = {o}\n"
        "      AND NOT attisdropped) THEN\n"
        f"    EXECUTE format('ALTER TABLE %s RENAME COLUMN %I TO %I', tbl, {o}, {n});\n"
        "  END IF;\n"
        + _CLEANUP
    )
    return SQLStep(
        f"{_do(migration_id, table, _LOCK_VIEWS)};\n{rename};\n{_do(migration_id, table, body)}",
        description=f"rename column {old} to {new}; drop its view in {schema_name(migration_id)},"
                    " in one transaction",
    )


# -- version_schema = True: one view per table showing the migration's new shape ------

#: The comment of a view that `shape_view_step` made starts with this JSON key; the
#: contract of a view rename leaves such views to `drop_shape_views_step`.
SHAPE_VIEW_KEY = "zdmigrate_new_shape"


def merge_shapes(shapes: Iterable[Shape]) -> list[Shape]:
    """One `Shape` per table (in the order the tables first appear), the operations'
    changes of each table merged; tables whose new shape needs no view are left out."""
    merged: dict[QualifiedName, Shape] = {}
    for shape in shapes:
        before = merged.get(shape.table, Shape(shape.table))
        show_as = dict(before.show_as)
        show_as.update(shape.show_as)
        merged[shape.table] = Shape(
            shape.table,
            hide=tuple(dict.fromkeys((*before.hide, *shape.hide))),
            show_as=tuple(show_as.items()),
            new_name=shape.new_name or before.new_name,
            adds=tuple(dict.fromkeys((*before.adds, *shape.adds))),
        )
    return [s for s in merged.values() if s.needs_view]


def shape_view_sql(migration_id: str, shape: Shape) -> str:
    """What the view is, shown by `plan` as a comment line (its columns are read at expand)."""
    parts: list[sql.Composable] = [sql.SQL("-- view {}: the columns of {}").format(
        sql.Identifier(schema_name(migration_id), shape.new_name or shape.table.name),
        shape.table.ident)]
    if shape.hide:
        parts.append(sql.SQL(" without {}").format(
            sql.SQL(", ").join(map(sql.Identifier, shape.hide))))
    if shape.show_as:
        parts.append(sql.SQL(", showing {}").format(sql.SQL(", ").join(
            sql.SQL("{} as {}").format(sql.Identifier(o), sql.Identifier(n))
            for o, n in shape.show_as)))
    return render(sql.Composed(parts))


def _ensure_schema(migration_id: str) -> str:
    """PL/pgSQL: create the version schema if missing (`ns` is its oid after); refuse a
    schema of that name that is not this migration's version schema."""
    marker = render(sql.Literal(_marker_prefix(migration_id)))
    return (
        "  ns := to_regnamespace(quote_ident(vs));\n"
        "  IF ns IS NULL THEN\n"
        "    EXECUTE format('CREATE SCHEMA %I', vs);\n"
        f"    EXECUTE format('COMMENT ON SCHEMA %I IS %L', vs, "
        f"{render(sql.Literal(comment(migration_id)))});\n"
        "    ns := to_regnamespace(quote_ident(vs));\n"
        f"  ELSIF left(coalesce(obj_description(ns, 'pg_namespace'), ''), "
        f"{len(_marker_prefix(migration_id))}) <> {marker} THEN\n"
        f"    RAISE EXCEPTION 'schema % exists and is not the version schema of migration %', vs, "
        f"{render(sql.Literal(migration_id))};\n"
        "  END IF;\n"
    )


def create_schema_step(migration_id: str) -> SQLStep:
    """The version schema of a migration whose tables need no view (it only adds columns,
    indexes, ...): app versions may name it on their search_path all the same."""
    return SQLStep(
        do_block(f"\n{_declare(migration_id, None)}BEGIN\n{_ensure_schema(migration_id)}END\n"),
        description=f"version schema {schema_name(migration_id)} (no table needs a view)",
    )


def shape_view_step(migration_id: str, shape: Shape) -> SQLStep:
    """Create (or re-create) the view of `shape.table` in the version schema.

    The view names the table's columns as they are at the end of expand, in their
    order, leaves out `shape.hide` and renames `shape.show_as`: a simple view, so
    PostgreSQL makes it auto-updatable. A view a rename of this migration made for
    the table is replaced (this view shows that rename too). The view copies the
    table's grants (column grants too) and, on PostgreSQL 15+, is security_invoker.
    """
    vs_lit = render(sql.Literal(schema_name(migration_id)))
    view = render(sql.Literal(shape.new_name or shape.table.name))
    shown = render(sql.Literal(json.dumps(dict(shape.show_as))))
    hide = render(sql.SQL("ARRAY[{}]").format(sql.SQL(", ").join(map(sql.Literal, shape.hide))))
    view_comment = render(sql.Literal(json.dumps({SHAPE_VIEW_KEY: migration_id})))
    body = (
        f"  shown jsonb := {shown}::jsonb;\n"
        f"  hide text[] := {hide}::text[];\n"
        "  cols text;\n"
        "BEGIN\n"
        "  IF tbl IS NULL THEN\n"
        f"    RAISE EXCEPTION 'table % not found', {render(sql.Literal(str(shape.table)))};\n"
        "  END IF;\n"
        + _ensure_schema(migration_id) + _FIND_VIEW +
        "  IF v IS NOT NULL THEN\n"
        "    EXECUTE format('DROP VIEW %s', v::regclass);\n"
        "  END IF;\n"
        f"  IF to_regclass(format('%I.%I', vs, {view})) IS NOT NULL THEN\n"
        f"    RAISE EXCEPTION 'version schema % already has a relation called %', {vs_lit}, {view};\n"
        "  END IF;\n"
        "  SELECT string_agg(CASE WHEN shown ? a.attname\n"
        "      THEN format('%I AS %I', a.attname, shown ->> a.attname)\n"
        "      ELSE quote_ident(a.attname) END, ', ' ORDER BY a.attnum) INTO cols\n"
        "    FROM pg_catalog.pg_attribute a\n"
        "    WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped\n"
        "      AND NOT a.attname = ANY(hide);\n"
        f"  EXECUTE format('CREATE VIEW %I.%I AS SELECT %s FROM %s', vs, {view}, "
        "coalesce(cols, ''), tbl);\n"
        f"  v := to_regclass(format('%I.%I', vs, {view}));\n"
        f"  EXECUTE format('COMMENT ON VIEW %s IS %L', v::regclass, {view_comment});\n"
        + _SECURITY_INVOKER + _GRANTS.format(shown="shown")
    )
    block = do_block(f"\n{_declare(migration_id, shape.table)}{body}END\n")
    return SQLStep(f"{shape_view_sql(migration_id, shape)}\n{block}",
                   description=f"view {shape.new_name or shape.table.name} in version schema "
                               f"{schema_name(migration_id)}: the new shape of {shape.table}")


def drop_shape_views_step(migration_id: str, *, at_contract: bool) -> SQLStep:
    """Drop the views `shape_view_step` made, then the version schema once it is empty.

    At contract it is the migration's last step: the tables have their new shape,
    so a session whose search_path still names the schema finds the same columns
    on the table at its next statement. Undoing expand it is the first step, before
    the operations drop what the views show.
    """
    body = (
        "  ns := to_regnamespace(quote_ident(vs));\n"
        "  IF ns IS NOT NULL THEN\n"
        "    FOR g IN SELECT c.oid FROM pg_catalog.pg_class c\n"
        "        WHERE c.relnamespace = ns AND c.relkind = 'v'\n"
        "          AND obj_description(c.oid, 'pg_class') LIKE "
        f"{render(sql.Literal(json.dumps({SHAPE_VIEW_KEY: migration_id})[:-1] + '%'))}\n"
        "        ORDER BY c.oid LOOP\n"
        "      EXECUTE format('DROP VIEW %s', g.oid::regclass);\n"
        "    END LOOP;\n"
        + _DROP_SCHEMA_IF_EMPTY
    )
    what = ("the tables have their new shape: drop" if at_contract else "undo expand: drop")
    return SQLStep(
        do_block(f"\n{_declare(migration_id, None)}BEGIN\n{body}END\n"),
        description=f"{what} the views of version schema {schema_name(migration_id)} and the schema",
    )


def not_viewed_elsewhere(migration_id: str, table: QualifiedName, why: str) -> Requirement:
    """Refuse a migration that changes `table` while another migration's version schema
    (still in flight) has a view of it: that view lists the columns the table had at its
    expand, so what this migration does would not show through it."""
    name = render(sql.Literal(render(table.ident)))
    check = do_block(
        "\nDECLARE\n  g record;\nBEGIN\n"
        "  FOR g IN SELECT n.nspname, c.relname FROM pg_catalog.pg_class c\n"
        "      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
        "      JOIN pg_catalog.pg_rewrite r ON r.ev_class = c.oid\n"
        "      JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass\n"
        "        AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass\n"
        f"    WHERE d.refobjid = to_regclass({name}) AND c.relkind = 'v'\n"
        f"      AND n.nspname <> {render(sql.Literal(schema_name(migration_id)))}\n"
        f"      AND obj_description(n.oid, 'pg_namespace') LIKE "
        f"{render(sql.Literal(json.dumps({MARKER_KEY: ''})[:-4] + '%'))}\n"
        "    LIMIT 1 LOOP\n"
        "    RAISE EXCEPTION 'view %.% of another migration in flight shows it', "
        "g.nspname, g.relname;\n"
        "  END LOOP;\nEND\n"
    )
    return Requirement(
        check,
        f"table {table}: {why}, but a version schema of a migration that is not contracted "
        "yet has a view of it, which lists the table's columns as they were at its expand; "
        "contract that migration first",
        expect="runs",
    )
