"""What hangs on a column that a column copy cannot carry over, checked before it is too late.

Two DO blocks that read the live catalog and fail with a list when something
is wrong, so nothing is ever dropped silently:

- `uncarriable_sql`, a requirement checked before expand: a primary key or an
  exclusion constraint on the column (they cannot be rebuilt without a long
  ACCESS EXCLUSIVE lock), a generated column computed from it, extended statistics, a constraint
  trigger, or the column being an identity or generated column itself;
- `contract_guard_step`, the first step of contract, before anything is dropped:
  the above again (the schema may have changed since expand), plus every object
  that would stop ``DROP COLUMN`` (views, rules, policies, triggers on the column,
  a foreign key to it that was not re-pointed) and every CHECK or foreign key on
  the column that has no copy. It raises SQLSTATE 2BP01 (dependent objects still
  exist), a data problem: exit 2, nothing changed.
"""

from __future__ import annotations

from zdmigrate.ops._carry_constraints import attnum, copy_name
from zdmigrate.ops._names import QualifiedName, do_block, render
from zdmigrate.steps import SQLStep


def _literal(value: str) -> str:
    from psycopg import sql

    return render(sql.Literal(value))


def _uncarriable(table: QualifiedName, old: str) -> str:
    """SQL: one row per thing on `table`.`old` that cannot be carried over (column `what`)."""
    t, n = table.regclass, attnum(table, old)
    return f"""
    SELECT format('primary key %I (add the key on the new column in a later migration)', conname)
      FROM pg_catalog.pg_constraint WHERE conrelid = {t} AND contype = 'p' AND {n} = ANY(conkey)
    UNION ALL
    SELECT format('exclusion constraint %I (it cannot be rebuilt without scanning the table'
                  ' under an ACCESS EXCLUSIVE lock)', conname)
      FROM pg_catalog.pg_constraint WHERE conrelid = {t} AND contype = 'x' AND {n} = ANY(conkey)
    UNION ALL
    SELECT format('constraint trigger %I', conname)
      FROM pg_catalog.pg_constraint WHERE conrelid = {t} AND contype = 't' AND {n} = ANY(conkey)
    UNION ALL
    SELECT format('foreign key %I sets only some columns ON DELETE (a column list,'
                  ' which is not carried over)', k.conname)
      FROM pg_catalog.pg_constraint k WHERE k.contype = 'f'
        AND ((k.conrelid = {t} AND {n} = ANY(k.conkey))
             OR (k.confrelid = {t} AND {n} = ANY(k.confkey)))
        AND CASE WHEN jsonb_typeof(to_jsonb(k) -> 'confdelsetcols') = 'array'
                 THEN jsonb_array_length(to_jsonb(k) -> 'confdelsetcols') > 0 ELSE false END
    UNION ALL
    SELECT format('generated column %I is computed from it', a.attname)
      FROM pg_catalog.pg_attrdef ad
      JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
      WHERE ad.adrelid = {t} AND ad.adnum <> {n} AND a.attgenerated <> ''
        AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_attrdef'::regclass
                    AND d.objid = ad.oid AND d.refobjid = {t} AND d.refobjsubid = {n})
    UNION ALL
    SELECT format('extended statistics %I', s.stxname)
      FROM pg_catalog.pg_statistic_ext s WHERE s.stxrelid = {t}
        AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_statistic_ext'::regclass AND d.objid = s.oid
                    AND d.refobjid = {t} AND d.refobjsubid = {n})
    UNION ALL
    SELECT CASE WHEN attidentity <> '' THEN 'it is an identity column'
                ELSE 'it is a generated column' END
      FROM pg_catalog.pg_attribute WHERE attrelid = {t} AND attnum = {n}
        AND (attidentity <> '' OR attgenerated <> '')"""


def _blocking(table: QualifiedName, old: str, migration_id: str) -> str:
    """SQL: one row per object that would stop (or be lost by) dropping the old column now."""
    t, n = table.regclass, attnum(table, old)
    copy = copy_name(migration_id, old, "k.conname")
    return f"""
    SELECT DISTINCT CASE
        WHEN d.classid = 'pg_rewrite'::regclass THEN (
          SELECT format('%s %I.%I uses it (redefine it on the new column, e.g. with'
                        ' CREATE OR REPLACE VIEW, before contract)',
                        CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                        ELSE 'a rule on' END, ns.nspname, c.relname)
          FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
          JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace WHERE r.oid = d.objid)
        WHEN d.classid = 'pg_constraint'::regclass THEN (
          SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
                                   WHERE c.conrelid = k.conrelid AND c.conname = {copy})
                      THEN NULL
                      ELSE format('foreign key %I on %s references it and was not re-pointed'
                                  ' (it came after switch-read: roll back to backfill and'
                                  ' advance again)', k.conname, k.conrelid::regclass) END
          FROM pg_catalog.pg_constraint k WHERE k.oid = d.objid)
        ELSE pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) || ' depends on it'
      END AS what
    FROM pg_catalog.pg_depend d
    WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = {t} AND d.refobjsubid = {n}
      AND d.deptype = 'n'
    UNION ALL
    SELECT format('%s %I came after expand and has no copy on the new column (roll back to'
                  ' pending and advance again)',
                  CASE k.contype WHEN 'c' THEN 'CHECK' ELSE 'foreign key' END, k.conname)
      FROM pg_catalog.pg_constraint k
      WHERE k.conrelid = {t} AND k.contype IN ('c', 'f') AND {n} = ANY(k.conkey)
        AND NOT (k.contype = 'f' AND k.confrelid = {t} AND {n} = ANY(k.confkey))
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
                        WHERE c.conrelid = {t} AND c.conname = {copy})"""


def _raise_if_any(query: str, errcode: str, hint: str) -> str:
    return (
        do_block(f"\nDECLARE\n  found text;\nBEGIN\n"
        f"  SELECT string_agg(what, '; ' ORDER BY what) INTO found FROM ({query}\n  ) x(what)"
        f" WHERE what IS NOT NULL;\n"
        f"  IF found IS NOT NULL THEN\n"
        f"    RAISE EXCEPTION USING ERRCODE = {_literal(errcode)}, MESSAGE = found,"
        f" HINT = {_literal(hint)};\n  END IF;\nEND\n")
    )


def uncarriable_sql(table: QualifiedName, old: str) -> str:
    """A DO block that fails, listing what on `old` cannot be carried over."""
    return _raise_if_any(_uncarriable(table, old), "feature_not_supported",
                         "nothing was changed")


def contract_guard_step(table: QualifiedName, old: str, new: str, migration_id: str) -> SQLStep:
    """First contract step: refuse (2BP01, nothing dropped yet) when dropping `old` is unsafe."""
    query = f"{_uncarriable(table, old)}\n    UNION ALL{_blocking(table, old, migration_id)}"
    return SQLStep(
        _raise_if_any(query, "dependent_objects_still_exist",
                      f"contract of {table}.{old} -> {new} changed nothing; fix these, then run "
                      "it again"),
        description=f"check that {table}.{old} can be dropped safely, before dropping anything",
    )
