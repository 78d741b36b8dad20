"""Carrying a column's indexes and unique constraints over to the column that replaces it.

Which indexes a column has is known only to the live catalog, so these are
`GeneratedSQLStep`s: catalog queries that return the statements to run.

- switch-read: every valid index on the old column (not the primary key) is
  copied onto the new column with ``CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT
  EXISTS``, under a generated name, and marked with a JSON comment saying which
  index (and unique constraint) it stands for, and what its comment was. Indexes
  of unique constraints are spelled from the catalog; every other index (with
  expressions, predicates, operator classes, storage parameters) is rewritten by
  PostgreSQL on an empty temporary copy of the table (`plan_rebuilt`);
- contract, after the old column is dropped (which drops its indexes): each copy
  takes the old name, or becomes the old unique constraint through
  ``ADD CONSTRAINT ... UNIQUE USING INDEX``; the mark gives way to the original's comment;
- rollback of switch-read: the copies are dropped CONCURRENTLY.

Every generated statement is idempotent, so a rerun after a kill is safe.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.ops import _claims as claims
from zdmigrate.ops import _memo
from zdmigrate.ops._claims import Claim
from zdmigrate.ops._names import (
    QualifiedName,
    do_block,
    generated_name,
    literal,
    render,
    sql_name_prefix,
)
from zdmigrate.steps import SCAFFOLDING, GeneratedSQLStep, SQLStep

_MARK = claims.CARRY_MARK
_SHAPE = "zdm_index_shape"


def _marked(migration_id: str, old: str) -> str:
    """A condition on pg_class `c`: the index is a copy made by this migration for `old`."""
    description = "obj_description(c.oid, 'pg_class')"
    info = f"CASE WHEN {description} LIKE '{{\"{_MARK}\"%' THEN ({description})::jsonb END"
    return (f"{info} ->> '{_MARK}' = {literal(migration_id)}"
            f" AND coalesce({info} ->> 'column', {literal(old)}) = {literal(old)}")


def copy_name(migration_id: str, index: str) -> str:
    """SQL: the generated name of the copy of index `index` (an SQL text expression),
    at most 40 bytes of the original's name, then ``_zdm`` and a hash."""
    return (f"{sql_name_prefix(index, 40)} || '_zdm'"
            f" || substr(md5({literal(migration_id)} || {index}), 1, 8)")


def copy_claims(table: QualifiedName, old: str, migration_id: str) -> Claim:
    """The names of the copies `copy_indexes` will make of the indexes on `old`."""
    t = claims.table_oid(table)
    return Claim(f"""SELECT n.copy, format('the copy of index %I', ic.relname),
       format('%s %I.%I', {claims.relation_kind('o')}, ns.nspname, o.relname)
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
CROSS JOIN LATERAL (SELECT {copy_name(migration_id, 'ic.relname')} AS copy) n
JOIN pg_catalog.pg_class o ON o.relnamespace = ic.relnamespace AND o.relname = n.copy
JOIN pg_catalog.pg_namespace ns ON ns.oid = o.relnamespace
WHERE i.indrelid = {t} AND NOT i.indisprimary
  AND (EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indrelid
               AND a.attnum = ANY(i.indkey) AND a.attname = {literal(old)})
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = i.indexrelid AND d.refobjid = {t}
                  AND d.refobjsubid = {claims.column_number(table, old)}))
  AND NOT {claims.ours('o.oid', 'pg_class', migration_id)}""")


def copy_indexes(table: QualifiedName, old: str, new: str, migration_id: str) -> GeneratedSQLStep:
    """Copies of the old column's indexes on the new column (run at switch-read).

    Indexes of unique constraints are spelled from the catalog's columns; every
    other index from the definition `plan_rebuilt` saved in the memo function.
    """
    regclass = table.regclass
    memo = _memo.function(memo_name(table, old, migration_id))
    schema_lit = literal(table.schema)
    old_lit, new_lit, mig = literal(old), literal(new), literal(migration_id)
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
  CROSS JOIN LATERAL (SELECT {copy_name(migration_id, 'c.relname')} AS copy) n
  CROSS JOIN LATERAL (VALUES
    (1, format('CREATE %sINDEX CONCURRENTLY IF NOT EXISTS %I ON %s USING %I (%s)%s',
               CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END, n.copy, i.indrelid::regclass,
               am.amname, {key_columns}, coalesce({included}, ''))),
    (2, format('COMMENT ON INDEX %I.%I IS %L', ns.nspname, n.copy,
               json_build_object('{_MARK}', {mig}, 'column', {old_lit}, 'index', c.relname,
                                 'constraint', con.conname)::text))
  ) AS s(step, statement)
  WHERE i.indrelid = {regclass} AND i.indisvalid AND NOT i.indisprimary
    AND con.conname IS NOT NULL AND i.indexprs IS NULL AND i.indpred IS NULL
    AND EXISTS (SELECT 1 FROM generate_series(0, i.indnatts - 1) AS g
                JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid
                 AND a.attnum = i.indkey[g] AND a.attname = {old_lit})
  UNION ALL
  SELECT e ->> 'index', s.step, s.statement
  FROM jsonb_array_elements({memo}()) AS e
  CROSS JOIN LATERAL (SELECT {copy_name(migration_id, "(e ->> 'index')")} AS copy) n
  CROSS JOIN LATERAL (VALUES
    (1, format('CREATE %sINDEX CONCURRENTLY IF NOT EXISTS %I ON %s %s',
               CASE WHEN (e ->> 'unique')::boolean THEN 'UNIQUE ' ELSE '' END, n.copy, {regclass},
               e ->> 'tail')),
    (2, format('COMMENT ON INDEX %I.%I IS %L', {schema_lit}, n.copy,
               json_build_object('{_MARK}', {mig}, 'column', {old_lit}, 'index', e ->> 'index',
                                 'constraint', NULL, 'comment', e ->> 'comment')::text))
  ) AS s(step, statement)
) copies ORDER BY original, step"""
    return GeneratedSQLStep(
        query.strip(), f"copy the indexes of {table}.{old} onto {new}",
    )


def memo_name(table: QualifiedName, old: str, migration_id: str) -> QualifiedName:
    """The memo function holding the rewritten definitions of `old`'s indexes."""
    return table.sibling(generated_name(migration_id, old, "indexes"))


def plan_rebuilt(
    table: QualifiedName, old: str, new: str, new_type: str | None, migration_id: str
) -> SQLStep:
    """Rewrite the definition of each index on `old` for `new`, saved in a memo function.

    PostgreSQL does the rewriting, never text substitution: each index is built
    on an empty temporary copy of the table, the column is renamed (and retyped)
    there, and ``pg_get_indexdef`` reads the result back. So expressions,
    predicates, operator classes, collations, sort orders, INCLUDE and WITH
    storage parameters all carry over. Indexes of constraints are left out (see
    `copy_indexes`). Run at switch-read, and before expand as a requirement.
    """
    t, shape = table.regclass, sql.Identifier("pg_temp", _SHAPE)
    prepare = "\n".join(f"  {render(s)};" for s in [
        sql.SQL("DROP TABLE IF EXISTS {}").format(shape),
        sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(
            sql.Identifier(_SHAPE), table.ident),
        sql.SQL("ALTER TABLE {} DROP COLUMN IF EXISTS {}").format(shape, sql.Identifier(new)),
    ])
    move = [sql.SQL("ALTER TABLE {} RENAME COLUMN {} TO {}").format(
        shape, sql.Identifier(old), sql.Identifier(new))]
    if new_type is not None:
        move.append(sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING NULL").format(
            shape, sql.Identifier(new), sql.SQL(new_type)))
    rename = "\n".join(f"  {render(s)};" for s in move)
    old_num = (f"(SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid = {t}"
               f" AND attname = {literal(old)} AND NOT attisdropped)")
    memo = _memo.function(memo_name(table, old, migration_id))
    create_memo = f"CREATE OR REPLACE FUNCTION {memo}() RETURNS jsonb LANGUAGE sql IMMUTABLE AS "
    return SQLStep(
        do_block(f"""
DECLARE
  r record;
  names text[] := '{{}}';
  uniques boolean[] := '{{}}';
  notes text[] := '{{}}';
  defs jsonb := '[]';
  def text;
  prefix text;
BEGIN
{prepare}
  FOR r IN
    SELECT c.relname, i.indisunique, pg_catalog.pg_get_indexdef(i.indexrelid) AS def,
           obj_description(c.oid, 'pg_class') AS note,
           format('CREATE %sINDEX %I ON %s%I.%I ', CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END,
                  c.relname, CASE WHEN tc.relkind = 'p' THEN 'ONLY ' ELSE '' END, tn.nspname,
                  tc.relname) AS prefix
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
    JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
    JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
    WHERE i.indrelid = {t} AND i.indisvalid
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid
                      AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
      AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = i.indexrelid AND d.refobjid = {t} AND d.refobjsubid = {old_num})
    ORDER BY c.relname
  LOOP
    IF left(r.def, length(r.prefix) + 6) <> r.prefix || 'USING ' THEN
      RAISE EXCEPTION 'cannot read the definition of index %', r.relname;
    END IF;
    names := names || r.relname::text;
    uniques := uniques || r.indisunique;
    notes := notes || r.note;
    EXECUTE format('CREATE INDEX %I ON {render(shape)} ', 'zdm_shape_' || array_length(names, 1))
      || substr(r.def, length(r.prefix) + 1);
  END LOOP;
{rename}
  FOR n IN 1 .. coalesce(array_length(names, 1), 0) LOOP
    def := pg_catalog.pg_get_indexdef(format('pg_temp.%I', 'zdm_shape_' || n)::regclass);
    -- "CREATE INDEX zdm_shape_<n> ON pg_temp.<shape> USING ...": only our own names before USING
    prefix := format('CREATE INDEX %I ON ', 'zdm_shape_' || n);
    IF left(def, length(prefix)) <> prefix OR strpos(def, ' USING ') = 0 THEN
      RAISE EXCEPTION 'cannot read the rewritten definition of index %', names[n];
    END IF;
    defs := defs || jsonb_build_object('index', names[n], 'unique', uniques[n],
                                       'tail', substr(def, strpos(def, ' USING ') + 1),
                                       'comment', notes[n]);
  END LOOP;
  EXECUTE {literal(create_memo)} || quote_literal('SELECT ' || quote_literal(defs::text) || '::jsonb');
END
"""),
        description=f"rewrite the definitions of the indexes of {table}.{old} for {new}",
    )


def finish_copies(table: QualifiedName, old: str, migration_id: str) -> GeneratedSQLStep:
    """Give each copy its original's name or constraint (run at contract, after the drop)."""
    info = "(obj_description(c.oid, 'pg_class'))::jsonb"
    query = f"""
SELECT statement FROM (
  SELECT c.relname AS copy, s.step, s.statement
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
  JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace
  CROSS JOIN LATERAL (SELECT {info} ->> 'index' AS original,
                             {info} ->> 'constraint' AS constraint_name,
                             {info} ->> 'comment' AS note) m
  CROSS JOIN LATERAL (VALUES
    (1, CASE
          WHEN m.constraint_name IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM pg_catalog.pg_constraint WHERE conindid = i.indexrelid
               AND conrelid = i.indrelid AND contype IN ('p', 'u', 'x'))
          THEN format('ALTER TABLE %s ADD CONSTRAINT %I UNIQUE USING INDEX %I',
                      i.indrelid::regclass, m.constraint_name, c.relname)
          WHEN m.constraint_name IS NULL AND c.relname <> m.original
          THEN format('ALTER INDEX %I.%I RENAME TO %I', ns.nspname, c.relname, m.original)
        END),
    (2, format('COMMENT ON INDEX %I.%I IS %s', ns.nspname,
               coalesce(m.constraint_name, m.original), coalesce(quote_literal(m.note), 'NULL')))
  ) AS s(step, statement)
  WHERE i.indrelid = {table.regclass} AND ({_marked(migration_id, old)})
) renames WHERE statement IS NOT NULL ORDER BY copy, step"""
    return GeneratedSQLStep(
        query.strip(), f"give the copied indexes of {table} their original names",
    )


def drop_memo(table: QualifiedName, old: str, migration_id: str) -> SQLStep:
    """Drop the memo of rewritten index definitions (zdmigrate's own scaffolding)."""
    step = _memo.drop_step(memo_name(table, old, migration_id))
    return SQLStep(step.sql, role=SCAFFOLDING)


def drop_copies(table: QualifiedName, old: str, migration_id: str) -> GeneratedSQLStep:
    """Drop the copies (rollback of switch-read)."""
    query = f"""
SELECT format('DROP INDEX CONCURRENTLY IF EXISTS %I.%I', ns.nspname, c.relname)
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace
WHERE i.indrelid = {table.regclass} AND ({_marked(migration_id, old)})
ORDER BY c.relname"""
    return GeneratedSQLStep(query.strip(), f"drop the copied indexes of {table}")
