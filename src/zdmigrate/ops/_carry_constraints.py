"""Carrying a column's CHECK and FOREIGN KEY constraints over to the column that replaces it.

Which constraints hang on a column is known only to the live catalog, so the
steps are DO blocks and `GeneratedSQLStep`s that read it when they run.

- expand: every CHECK involving the old column and every foreign key *from* it is
  added on the new column ``NOT VALID`` (an instant), under a generated name and
  marked with a JSON comment saying which constraint it stands for. A CHECK is
  rewritten by PostgreSQL itself, never by text: the table's shape is copied into
  a temporary table (``LIKE ... INCLUDING CONSTRAINTS``), the old column renamed
  (and retyped) there, and the constraint read back with ``pg_get_expr``;
- switch-read: foreign keys *to* the old column (from other tables, or this one)
  are re-pointed: a copy referencing the new column is added NOT VALID, once the
  copied unique index exists; then every copy whose original is valid is
  validated (a scan under SHARE UPDATE EXCLUSIVE, reads and writes go on);
- contract: the originals of re-pointed foreign keys are dropped before the old
  column (which takes the other originals with it); then each copy takes its
  original's name and comment;
- rollback of switch-read drops the re-pointed copies; rollback of expand drops
  the new column, which takes the other copies with it.

Every step is idempotent, so a rerun after a kill is safe.
"""

from __future__ import annotations

from psycopg import sql

from zdmigrate.ops import _claims as claims
from zdmigrate.ops._claims import Claim
from zdmigrate.ops._names import QualifiedName, do_block, literal, render, sql_name_prefix
from zdmigrate.steps import GeneratedSQLStep, SQLStep

_MARK = claims.CARRY_MARK
SHAPE = "zdm_shape"


def attnum(table: QualifiedName, column: str) -> str:
    """SQL: the attribute number of `column` in `table` (NULL once it is dropped)."""
    return (f"(SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid = {table.regclass} "
            f"AND attname = {literal(column)} AND NOT attisdropped)")


def copy_name(migration_id: str, old: str, original: str) -> str:
    """SQL: the generated name of the copy of constraint `original` (an SQL text expression)."""
    key = literal(f"{migration_id}:{old}:")
    return f"{sql_name_prefix(original, 40)} || '_zdm' || substr(md5({key} || {original}), 1, 8)"


def copy_claims(table: QualifiedName, old: str, migration_id: str) -> Claim:
    """The names of the copies of the CHECKs and foreign keys on `old` (made at expand)
    and of the foreign keys to it (re-pointed at switch-read), each on its own table."""
    t, num = claims.table_oid(table), claims.column_number(table, old)
    return Claim(f"""SELECT n.copy, format('the copy of constraint %I on %s', k.conname,
       k.conrelid::regclass), format('constraint %I on %s', o.conname, o.conrelid::regclass)
FROM pg_catalog.pg_constraint k
CROSS JOIN LATERAL (SELECT {copy_name(migration_id, old, 'k.conname')} AS copy) n
JOIN pg_catalog.pg_constraint o ON o.conrelid = k.conrelid AND o.conname = n.copy
WHERE ((k.conrelid = {t} AND k.contype IN ('c', 'f') AND {num} = ANY(k.conkey))
       OR (k.contype = 'f' AND k.confrelid = {t} AND {num} = ANY(k.confkey)))
  AND NOT {claims.ours('o.oid', 'pg_constraint', migration_id)}""")


def _mark(migration_id: str, table: QualifiedName, old: str, k: str) -> str:
    """SQL: the JSON comment put on a copy of constraint row `k`."""
    return (f"json_build_object('{_MARK}', {literal(migration_id)}, 'table', {table.regclass}::text,"
            f" 'column', {literal(old)}, 'constraint', {k}.conname,"
            f" 'comment', obj_description({k}.oid, 'pg_constraint'))::text")


def _marked(migration_id: str, table: QualifiedName, old: str, k: str) -> str:
    """SQL condition on constraint row `k`: a copy made by this operation."""
    description = f"obj_description({k}.oid, 'pg_constraint')"
    info = f"CASE WHEN {description} LIKE '{{\"{_MARK}\"%' THEN ({description})::jsonb END"
    return (f"({info} ->> '{_MARK}' = {literal(migration_id)} AND {info} ->> 'table' = "
            f"{table.regclass}::text AND {info} ->> 'column' = {literal(old)})")


def fk_definition(table: QualifiedName, old: str, new: str, k: str) -> str:
    """SQL: ``FOREIGN KEY (...) REFERENCES ...`` of row `k`, with `table`.`old` read as `new`."""
    t, old_lit, new_lit = table.regclass, literal(old), literal(new)

    def columns(rel: str, keys: str) -> str:
        return (f"(SELECT string_agg(quote_ident(CASE WHEN {rel} = {t} AND a.attname = {old_lit}"
                f" THEN {new_lit} ELSE a.attname END), ', ' ORDER BY x.n)"
                f" FROM unnest({keys}) WITH ORDINALITY AS x(num, n)"
                f" JOIN pg_catalog.pg_attribute a ON a.attrelid = {rel} AND a.attnum = x.num)")

    def action(column: str, verb: str) -> str:
        return (f"CASE {k}.{column} WHEN 'r' THEN ' ON {verb} RESTRICT' WHEN 'c' THEN ' ON {verb}"
                f" CASCADE' WHEN 'n' THEN ' ON {verb} SET NULL' WHEN 'd' THEN ' ON {verb} SET"
                f" DEFAULT' ELSE '' END")

    return (
        f"format('FOREIGN KEY (%s) REFERENCES %s (%s)', {columns(f'{k}.conrelid', f'{k}.conkey')},"
        f" {k}.confrelid::regclass, {columns(f'{k}.confrelid', f'{k}.confkey')})"
        f" || CASE {k}.confmatchtype WHEN 'f' THEN ' MATCH FULL' ELSE '' END"
        f" || {action('confupdtype', 'UPDATE')} || {action('confdeltype', 'DELETE')}"
        f" || CASE WHEN {k}.condeferrable THEN ' DEFERRABLE' ELSE '' END"
        f" || CASE WHEN {k}.condeferred THEN ' INITIALLY DEFERRED' ELSE '' END"
    )


def shape_statements(table: QualifiedName, old: str, new: str, new_type: str | None) -> str:
    """PL/pgSQL: a temporary copy of `table`'s columns and CHECKs, `old` renamed to `new`."""
    shape = sql.Identifier("pg_temp", SHAPE)
    out = [
        sql.SQL("DROP TABLE IF EXISTS {}").format(shape),
        sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING CONSTRAINTS) ON COMMIT DROP").format(
            sql.Identifier(SHAPE), table.ident),
        sql.SQL("ALTER TABLE {} DROP COLUMN IF EXISTS {}").format(shape, sql.Identifier(new)),
        sql.SQL("ALTER TABLE {} RENAME COLUMN {} TO {}").format(
            shape, sql.Identifier(old), sql.Identifier(new)),
    ]
    if new_type is not None:
        out.append(sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING NULL").format(
            shape, sql.Identifier(new), sql.SQL(new_type)))
    return "\n".join(f"  {render(s)};" for s in out)


def checks_fit_sql(table: QualifiedName, old: str, new: str, new_type: str) -> str:
    """A DO block that fails, naming each CHECK on `old` that does not compile for `new_type`."""
    t, old_num = table.regclass, attnum(table, old)
    shape = sql.Identifier("pg_temp", SHAPE)
    drop = render(sql.SQL("ALTER TABLE {} DROP CONSTRAINT %I").format(shape))
    retype = render(sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING NULL").format(
        shape, sql.Identifier(new), sql.SQL(new_type)))
    add = render(sql.SQL("ALTER TABLE {} ADD CONSTRAINT %I CHECK (%s)").format(shape))
    return (
        do_block(f"\nDECLARE\n  r record;\n  names text[] := '{{}}';\n  exprs text[] := '{{}}';\n"
        f"  bad text[] := '{{}}';\nBEGIN\n"
        f"{shape_statements(table, old, new, None)}\n"
        f"  FOR r IN SELECT s.conname, pg_get_expr(s.conbin, s.conrelid) AS expr\n"
        f"    FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_constraint s\n"
        f"      ON s.conrelid = {literal('pg_temp.' + SHAPE)}::regclass AND s.conname = k.conname"
        f" AND s.contype = 'c'\n"
        f"    WHERE k.conrelid = {t} AND k.contype = 'c' AND {old_num} = ANY(k.conkey)\n"
        f"  LOOP\n    names := names || r.conname::text;\n    exprs := exprs || r.expr;\n"
        f"    EXECUTE format({literal(drop)}, r.conname);\n  END LOOP;\n"
        f"  {retype};\n"
        f"  FOR i IN 1 .. coalesce(array_length(names, 1), 0) LOOP\n    BEGIN\n"
        f"      EXECUTE format({literal(add)}, names[i], exprs[i]);\n"
        f"    EXCEPTION WHEN OTHERS THEN\n"
        f"      bad := bad || format('CHECK %s (%s): %s', names[i], exprs[i], SQLERRM);\n"
        f"    END;\n  END LOOP;\n"
        f"  IF coalesce(array_length(bad, 1), 0) > 0 THEN\n"
        f"    RAISE EXCEPTION '%', array_to_string(bad, '; ');\n  END IF;\nEND\n")
    )


def foreign_keys_fit_sql(table: QualifiedName, old: str, new_type: str) -> str:
    """A DO block that fails, naming each foreign key from or to `old` whose other side
    cannot be compared with `new_type` (the copy on the new column could not be built)."""
    t, old_num = table.regclass, attnum(table, old)
    other = (
        "(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a"
        f" WHERE a.attrelid = CASE WHEN k.conrelid = {t} AND {old_num} = ANY(k.conkey)"
        " THEN k.confrelid ELSE k.conrelid END"
        f" AND a.attnum = CASE WHEN k.conrelid = {t} AND {old_num} = ANY(k.conkey)"
        f" THEN k.confkey[array_position(k.conkey, {old_num})]"
        f" ELSE k.conkey[array_position(k.confkey, {old_num})] END)"
    )
    probe = f"SELECT NULL::{new_type} = NULL::"
    return (
        do_block(f"\nDECLARE\n  r record;\n  bad text[] := '{{}}';\nBEGIN\n"
        f"  FOR r IN SELECT k.conname, {other} AS other FROM pg_catalog.pg_constraint k\n"
        f"    WHERE k.contype = 'f' AND ((k.conrelid = {t} AND {old_num} = ANY(k.conkey))\n"
        f"      OR (k.confrelid = {t} AND {old_num} = ANY(k.confkey)))\n"
        f"  LOOP\n    BEGIN\n      EXECUTE {literal(probe)} || r.other;\n"
        f"    EXCEPTION WHEN OTHERS THEN\n"
        f"      bad := bad || format('foreign key %s: %s', r.conname, SQLERRM);\n"
        f"    END;\n  END LOOP;\n"
        f"  IF coalesce(array_length(bad, 1), 0) > 0 THEN\n"
        f"    RAISE EXCEPTION '%', array_to_string(bad, '; ');\n  END IF;\nEND\n")
    )


def add_copies(
    table: QualifiedName, old: str, new: str, new_type: str | None, migration_id: str
) -> SQLStep:
    """expand: NOT VALID copies on `new` of each CHECK on `old` and each foreign key from it."""
    t, old_num = table.regclass, attnum(table, old)
    copy = copy_name(migration_id, old, "k.conname")
    add = render(sql.SQL("ALTER TABLE {} ADD CONSTRAINT %I %s NOT VALID").format(table.ident))
    comment = render(sql.SQL("COMMENT ON CONSTRAINT %I ON {} IS %L").format(table.ident))
    return SQLStep(
        do_block(f"\nDECLARE\n  r record;\nBEGIN\n"
        f"{shape_statements(table, old, new, new_type)}\n"
        f"  FOR r IN\n"
        f"    SELECT {copy} AS copy, 'CHECK (' || pg_get_expr(s.conbin, s.conrelid) || ')'"
        f" || CASE WHEN k.connoinherit THEN ' NO INHERIT' ELSE '' END AS def,"
        f" {_mark(migration_id, table, old, 'k')} AS mark\n"
        f"    FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_constraint s\n"
        f"      ON s.conrelid = {literal('pg_temp.' + SHAPE)}::regclass AND s.conname = k.conname"
        f" AND s.contype = 'c'\n"
        f"    WHERE k.conrelid = {t} AND k.contype = 'c' AND {old_num} = ANY(k.conkey)\n"
        f"    UNION ALL\n"
        f"    SELECT {copy}, {fk_definition(table, old, new, 'k')}, {_mark(migration_id, table, old, 'k')}\n"
        f"    FROM pg_catalog.pg_constraint k\n"
        f"    WHERE k.conrelid = {t} AND k.contype = 'f' AND {old_num} = ANY(k.conkey)\n"
        f"      AND NOT (k.confrelid = {t} AND {old_num} = ANY(k.confkey))\n"
        f"  LOOP\n"
        f"    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = {t}"
        f" AND conname = r.copy) THEN\n"
        f"      EXECUTE format({literal(add)}, r.copy, r.def);\n"
        f"      EXECUTE format({literal(comment)}, r.copy, r.mark);\n"
        f"    END IF;\n  END LOOP;\nEND\n"),
        description=f"copy the CHECK and foreign keys of {table}.{old} onto {new}, NOT VALID",
    )


def _inbound(table: QualifiedName, old: str) -> str:
    """SQL condition on constraint row `k`: a foreign key that references `table`.`old`."""
    return (f"k.contype = 'f' AND k.confrelid = {table.regclass}"
            f" AND {attnum(table, old)} = ANY(k.confkey)")


def repoint_inbound(table: QualifiedName, old: str, new: str, migration_id: str) -> GeneratedSQLStep:
    """switch-read: for each foreign key to `old`, a NOT VALID copy that references `new`."""
    copy = copy_name(migration_id, old, "k.conname")
    query = f"""
SELECT statement FROM (
  SELECT k.conname, s.step, s.statement
  FROM pg_catalog.pg_constraint k
  CROSS JOIN LATERAL (SELECT {copy} AS copy) n
  CROSS JOIN LATERAL (VALUES
    (1, format('ALTER TABLE %s ADD CONSTRAINT %I %s NOT VALID', k.conrelid::regclass, n.copy,
               {fk_definition(table, old, new, 'k')})),
    (2, format('COMMENT ON CONSTRAINT %I ON %s IS %L', n.copy, k.conrelid::regclass,
               {_mark(migration_id, table, old, 'k')}))
  ) AS s(step, statement)
  WHERE {_inbound(table, old)}
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
                    WHERE c.conrelid = k.conrelid AND c.conname = n.copy)
) adds ORDER BY conname, step"""
    return GeneratedSQLStep(query.strip(), f"re-point the foreign keys to {table}.{old} at {new}")


def _each_constraint(action: str, k: str, rest: str, description: str) -> GeneratedSQLStep:
    """One ``ALTER TABLE <its table> <action> <its name>`` per pg_constraint row `k` that
    `rest` (joins and a WHERE clause) selects, in a stable order."""
    query = f"""
SELECT format('ALTER TABLE %s {action} %I', {k}.conrelid::regclass, {k}.conname)
FROM pg_catalog.pg_constraint {k}{rest}
ORDER BY {k}.conrelid, {k}.conname"""
    return GeneratedSQLStep(query.strip(), description)


def validate_copies(table: QualifiedName, old: str, migration_id: str) -> GeneratedSQLStep:
    """switch-read: VALIDATE each copy whose original is valid (one statement each)."""
    return _each_constraint("VALIDATE CONSTRAINT", "c", f"""
JOIN pg_catalog.pg_constraint k ON k.conrelid = c.conrelid
 AND k.conname = (obj_description(c.oid, 'pg_constraint'))::jsonb ->> 'constraint'
WHERE {_marked(migration_id, table, old, 'c')} AND NOT c.convalidated AND k.convalidated""",
                            f"validate the copied constraints of {table}.{old}")


def drop_inbound_copies(table: QualifiedName, old: str, migration_id: str) -> GeneratedSQLStep:
    """rollback of switch-read: drop the re-pointed copies of foreign keys to `old`."""
    return _each_constraint("DROP CONSTRAINT IF EXISTS", "c", f"""
WHERE {_marked(migration_id, table, old, 'c')} AND c.contype = 'f'
  AND c.confrelid = {table.regclass}""", f"drop the re-pointed foreign keys to {table}.{old}")


def drop_inbound_originals(table: QualifiedName, old: str, migration_id: str) -> GeneratedSQLStep:
    """contract: drop each foreign key to `old` that has a re-pointed copy."""
    return _each_constraint("DROP CONSTRAINT IF EXISTS", "k", f"""
WHERE {_inbound(table, old)}
  AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conrelid = k.conrelid
              AND c.conname = {copy_name(migration_id, old, 'k.conname')})""",
                            f"drop the foreign keys to {table}.{old} that were re-pointed")


def finish_copies(table: QualifiedName, old: str, migration_id: str) -> GeneratedSQLStep:
    """contract, after the old column is gone: each copy takes its original's name and comment."""
    info = "(obj_description(c.oid, 'pg_constraint'))::jsonb"
    query = f"""
SELECT statement FROM (
  SELECT c.conrelid, c.conname, s.step, s.statement
  FROM pg_catalog.pg_constraint c
  CROSS JOIN LATERAL (SELECT {info} ->> 'constraint' AS original, {info} ->> 'comment' AS note) m
  CROSS JOIN LATERAL (VALUES
    (1, CASE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint o
                              WHERE o.conrelid = c.conrelid AND o.conname = m.original)
        THEN format('ALTER TABLE %s RENAME CONSTRAINT %I TO %I', c.conrelid::regclass,
                    c.conname, m.original) END),
    (2, format('COMMENT ON CONSTRAINT %I ON %s IS %s', m.original, c.conrelid::regclass,
               coalesce(quote_literal(m.note), 'NULL')))
  ) AS s(step, statement)
  WHERE {_marked(migration_id, table, old, 'c')}
) renames WHERE statement IS NOT NULL ORDER BY conrelid, conname, step"""
    return GeneratedSQLStep(query.strip(),
                            f"give the copied constraints of {table}.{old} their original names")
