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

Warnings:
- the view lists the table's columns as they were at expand: a column added
  later (before contract) is not visible under the new names;
- only unqualified names go through the search_path: ``shop.users`` written
  with its schema reaches the table, not the view;
- contract takes ACCESS EXCLUSIVE on the table for an instant (the rename);
  the engine runs it under lock_timeout with retries.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping

from psycopg import sql

from zdmigrate.ops import _claims
from zdmigrate.ops._claims import VERSION_SCHEMA_MARK, Claim
from zdmigrate.ops._names import QualifiedName, do_block, generated_name, render
from zdmigrate.steps import SQLStep

#: Every version schema's comment starts with this JSON key (see `comment`).
MARKER_KEY = VERSION_SCHEMA_MARK


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


def _declare(migration_id: str, table: QualifiedName) -> str:
    return (
        "DECLARE\n"
        f"  vs text := {render(sql.Literal(schema_name(migration_id)))};\n"
        f"  tbl regclass := to_regclass({render(sql.Literal(render(table.ident)))});\n"
        "  ns oid;\n  v oid;\n  g record;\n"
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
    "        WHERE c.relnamespace = ns AND c.relkind = 'v' LOOP\n"
    "      IF g.name = g.base_name AND NOT EXISTS (\n"
    "          SELECT 1 FROM pg_catalog.pg_attribute va WHERE va.attrelid = g.view\n"
    "            AND va.attnum > 0 AND NOT va.attisdropped AND NOT EXISTS (\n"
    "              SELECT 1 FROM pg_catalog.pg_attribute ba WHERE ba.attrelid = g.base\n"
    "                AND ba.attname = va.attname AND NOT ba.attisdropped)) THEN\n"
    "        EXECUTE format('DROP VIEW %I.%I', vs, g.name);\n"
    "      END IF;\n"
    "    END LOOP;\n"
    "    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend\n"
    "        WHERE refclassid = 'pg_catalog.pg_namespace'::regclass AND refobjid = ns) THEN\n"
    "      EXECUTE format('DROP SCHEMA %I', vs);\n"
    "    END IF;\n"
    "  END IF;\n"
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
        "    IF current_setting('server_version_num')::int >= 150000 THEN\n"
        "      EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', v::regclass);\n"
        "    END IF;\n"
        "    FOR g IN SELECT a.grantee, a.privilege_type FROM pg_catalog.pg_class c,\n"
        "        aclexplode(c.relacl) a WHERE c.oid = tbl AND a.grantee <> c.relowner LOOP\n"
        "      EXECUTE format('GRANT %s ON %s TO %s', g.privilege_type, v::regclass,\n"
        "        CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);\n"
        "      EXECUTE format('GRANT USAGE ON SCHEMA %I TO %s', vs,\n"
        "        CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);\n"
        "    END LOOP;\n"
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
