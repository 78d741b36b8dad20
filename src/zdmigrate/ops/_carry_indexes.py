"""Carrying a column's indexes and unique constraints over to the column that replaces it.

Which indexes a column has is known only to the live catalog, so these are
`GeneratedSQLStep`s: catalog queries that return the statements to run.

- switch-read: every valid index on the old column (plain columns, no expression,
  no predicate, not the primary key) is copied onto the new column with
  ``CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS``, under a generated name, and
  marked with a JSON comment saying which index (and unique constraint) it stands for;
- contract, after the old column is dropped (which drops its indexes): each copy
  takes the old name, or becomes the old unique constraint through
  ``ADD CONSTRAINT ... UNIQUE USING INDEX``; the mark is removed;
- rollback of switch-read: the copies are dropped CONCURRENTLY.

Every generated statement is idempotent, so a rerun after a kill is safe.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.ops._names import MAX_IDENTIFIER_BYTES, QualifiedName, render, sql_name_prefix
from zdmigrate.steps import GeneratedSQLStep

_MARK = "zdm_carry"


def _literal(value: str) -> str:
    return render(sql.Literal(value))


def _regclass(table: QualifiedName) -> str:
    return f"{_literal(render(table.ident))}::regclass"


def _marked(migration_id: str, column: str) -> str:
    """A condition on pg_class `c`: the index is a copy made by this migration for `column`.

    Two operations of one migration may copy columns of the same table; each must
    finish or drop only its own copies. (Marks written before the column was
    recorded match any column, as they did.)
    """
    description = "obj_description(c.oid, 'pg_class')"
    mark = f"CASE WHEN {description} LIKE '{{\"{_MARK}\"%' THEN ({description})::jsonb END"
    return (
        f"({mark} ->> '{_MARK}') = {_literal(migration_id)} "
        f"AND coalesce({mark} ->> 'column', {_literal(column)}) = {_literal(column)}"
    )


def copy_indexes(table: QualifiedName, old: str, new: str, migration_id: str) -> GeneratedSQLStep:
    """Copies of the old column's indexes on the new column (run at switch-read)."""
    regclass = _regclass(table)
    old_lit, new_lit, mig = _literal(old), _literal(new), _literal(migration_id)
    column = (
        f"format('%I', CASE WHEN a.attname = {old_lit} THEN {new_lit} ELSE a.attname END)"
    )
    key_columns = (
        f"(SELECT string_agg({column}"
        " || CASE WHEN i.indoption[k] & 1 = 1 THEN ' DESC' ELSE '' END"
        " || CASE WHEN i.indoption[k] & 3 = 1 THEN ' NULLS LAST'"
        " WHEN i.indoption[k] & 3 = 2 THEN ' NULLS FIRST' ELSE '' END, ', ' ORDER BY k)"
        " FROM generate_series(0, i.indnkeyatts - 1) AS k"
        " JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k])"
    )
    included = (
        f"(SELECT ' INCLUDE (' || string_agg({column}, ', ' ORDER BY k) || ')'"
        " FROM generate_series(i.indnkeyatts, i.indnatts - 1) AS k"
        " JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k])"
    )
    query = f"""
SELECT statement FROM (
  SELECT c.relname AS original, s.step, s.statement
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
  JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace
  JOIN pg_catalog.pg_am am ON am.oid = c.relam
  LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid AND con.contype = 'u'
  CROSS JOIN LATERAL (SELECT {sql_name_prefix("c.relname", 40)} || '_zdm'
                             || substr(md5({mig} || c.relname), 1, 8) AS copy) n
  LEFT JOIN pg_catalog.pg_class taken ON taken.relnamespace = c.relnamespace
   AND taken.relname = n.copy
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index ti
                   WHERE ti.indexrelid = taken.oid AND ti.indrelid = i.indrelid)
  CROSS JOIN LATERAL (VALUES
    (0, CASE WHEN taken.oid IS NOT NULL OR octet_length(n.copy) > {MAX_IDENTIFIER_BYTES}
          OR n.copy = c.relname
        THEN format('DO %s', '$zdm' || md5(n.copy) || '$ BEGIN RAISE EXCEPTION '
             || quote_literal(format('zdmigrate: cannot copy index %s: the name %s it '
                                     'generated is taken by another relation', c.relname, n.copy))
             || '; END $zdm' || md5(n.copy) || '$') END),
    (1, format('CREATE %sINDEX CONCURRENTLY IF NOT EXISTS %I ON %s USING %I (%s)%s',
               CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END, n.copy, i.indrelid::regclass,
               am.amname, {key_columns}, coalesce({included}, ''))),
    (2, format('COMMENT ON INDEX %I.%I IS %L', ns.nspname, n.copy,
               json_build_object('{_MARK}', {mig}, 'index', c.relname,
                                 'constraint', con.conname, 'column', {new_lit})::text))
  ) AS s(step, statement)
  WHERE i.indrelid = {regclass} AND i.indisvalid AND NOT i.indisprimary
    AND i.indexprs IS NULL AND i.indpred IS NULL
    AND EXISTS (SELECT 1 FROM generate_series(0, i.indnatts - 1) AS g
                JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid
                 AND a.attnum = i.indkey[g] AND a.attname = {old_lit})
) copies WHERE statement IS NOT NULL ORDER BY original, step"""
    return GeneratedSQLStep(
        query.strip(), f"copy the indexes of {table}.{old} onto {new}",
    )


def finish_copies(table: QualifiedName, migration_id: str, column: str) -> GeneratedSQLStep:
    """Give each copy its original's name or constraint (run at contract, after the drop)."""
    info = "(obj_description(c.oid, 'pg_class'))::jsonb"
    query = f"""
SELECT statement FROM (
  SELECT c.relname AS copy, s.step, s.statement
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
  JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace
  CROSS JOIN LATERAL (SELECT {info} ->> 'index' AS original,
                             {info} ->> 'constraint' AS constraint_name) m
  CROSS JOIN LATERAL (VALUES
    (1, CASE
          WHEN m.constraint_name IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM pg_catalog.pg_constraint WHERE conindid = i.indexrelid)
          THEN format('ALTER TABLE %s ADD CONSTRAINT %I UNIQUE USING INDEX %I',
                      i.indrelid::regclass, m.constraint_name, c.relname)
          WHEN m.constraint_name IS NULL AND c.relname <> m.original
          THEN format('ALTER INDEX %I.%I RENAME TO %I', ns.nspname, c.relname, m.original)
        END),
    (2, format('COMMENT ON INDEX %I.%I IS NULL', ns.nspname,
               coalesce(m.constraint_name, m.original)))
  ) AS s(step, statement)
  WHERE i.indrelid = {_regclass(table)} AND ({_marked(migration_id, column)})
) renames WHERE statement IS NOT NULL ORDER BY copy, step"""
    return GeneratedSQLStep(
        query.strip(), f"give the copied indexes of {table} their original names",
    )


def drop_copies(table: QualifiedName, migration_id: str, column: str) -> GeneratedSQLStep:
    """Drop the copies (rollback of switch-read)."""
    query = f"""
SELECT format('DROP INDEX CONCURRENTLY IF EXISTS %I.%I', ns.nspname, c.relname)
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace
WHERE i.indrelid = {_regclass(table)} AND ({_marked(migration_id, column)})
ORDER BY c.relname"""
    return GeneratedSQLStep(query.strip(), f"drop the copied indexes of {table}")
