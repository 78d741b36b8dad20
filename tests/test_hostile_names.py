"""Generated names already taken by someone else's object are refused before expand (issue 14 item 3).

For each kind of name zdmigrate generates, a user object is created under it
first; `phase advance` must exit 2 naming the object and the operation, and
change nothing (catalog and state). zdmigrate's own marked object under the
name (an earlier attempt's) is accepted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fix_cli import Cli
from tests.helpers import write_migration

MIG = "0001_m"

_CATALOG = """
SELECT 'rel', n.nspname || '.' || c.relname || ':' || c.relkind::text || ':' ||
       coalesce(obj_description(c.oid, 'pg_class'), '')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
UNION ALL SELECT 'con', conrelid::regclass::text || '.' || conname || ':' || convalidated::text ||
       ':' || coalesce(obj_description(oid, 'pg_constraint'), '')
  FROM pg_constraint WHERE connamespace NOT IN ('pg_catalog'::regnamespace,
                                                'information_schema'::regnamespace)
UNION ALL SELECT 'trg', tgrelid::regclass::text || '.' || tgname FROM pg_trigger WHERE NOT tgisinternal
UNION ALL SELECT 'fn', p.oid::regprocedure::text || ':' || md5(p.prosrc) FROM pg_proc p
 WHERE p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
UNION ALL SELECT 'ns', nspname FROM pg_namespace
UNION ALL SELECT 'col', attrelid::regclass::text || '.' || attname || ':' || attnotnull::text ||
       ':' || format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attnum > 0 AND NOT attisdropped AND attrelid IN (
       SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r')
ORDER BY 1, 2
"""


def _catalog(dsn: str) -> list[Any]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(_CATALOG).fetchall()


def _index_copy(index: str) -> str:
    """The name zdmigrate gives the copy of `index` (short ASCII names)."""
    return f"{index}_zdm{hashlib.md5((MIG + index).encode()).hexdigest()[:8]}"


def _constraint_copy(old: str, constraint: str) -> str:
    digest = hashlib.md5(f"{MIG}:{old}:{constraint}".encode()).hexdigest()[:8]
    return f"{constraint}_zdm{digest}"


BASE = """
CREATE TABLE t (id int PRIMARY KEY, a int NOT NULL CHECK (a > 0), b int, note text);
CREATE INDEX t_a_idx ON t (a);
CREATE TABLE r (id int PRIMARY KEY, ta int);
ALTER TABLE t ADD CONSTRAINT t_a_key UNIQUE (a);
ALTER TABLE r ADD CONSTRAINT r_ta_fkey FOREIGN KEY (ta) REFERENCES t (a);
"""
RENAME = 'ops.RenameColumn("t", "a", "a2")'

# (case id, the operation, SQL creating the user's object, its description in the message)
CASES = [
    ("index copy", RENAME,
     f"CREATE TABLE {_index_copy('t_a_idx')} (x int)", f"table public.{_index_copy('t_a_idx')}"),
    ("unique index copy", RENAME,
     f"CREATE INDEX {_index_copy('t_a_key')} ON t (b)", f"index public.{_index_copy('t_a_key')}"),
    ("check copy", RENAME,
     f"ALTER TABLE t ADD CONSTRAINT {_constraint_copy('a', 't_a_check')} CHECK (b > 0)",
     f"constraint {_constraint_copy('a', 't_a_check')} on t"),
    ("inbound foreign key copy", RENAME,
     f"ALTER TABLE r ADD CONSTRAINT {_constraint_copy('a', 'r_ta_fkey')} CHECK (ta > 0)",
     f"constraint {_constraint_copy('a', 'r_ta_fkey')} on r"),
    ("sync trigger", RENAME,
     f"CREATE FUNCTION mine() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;"
     f" CREATE TRIGGER zdm_{MIG}_rename_a BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION mine()",
     f"trigger zdm_{MIG}_rename_a on t"),
    ("sync function", RENAME,
     f"CREATE FUNCTION zdm_{MIG}_rename_a() RETURNS int LANGUAGE sql AS 'SELECT 1'",
     f"function public.zdm_{MIG}_rename_a()"),
    ("index memo", RENAME,
     f"CREATE FUNCTION zdm_{MIG}_a_indexes() RETURNS int LANGUAGE sql AS 'SELECT 1'",
     f"function public.zdm_{MIG}_a_indexes()"),
    ("not-null helper", RENAME,
     f"ALTER TABLE t ADD CONSTRAINT zdm_{MIG}_a2_nn CHECK (b IS NULL OR b > 0)",
     f"constraint zdm_{MIG}_a2_nn on t"),
    ("retype trigger", 'ops.ChangeColumnType("t", "b", "bigint", up="b::bigint")',
     f"CREATE FUNCTION zdm_{MIG}_retype_b() RETURNS int LANGUAGE sql AS 'SELECT 1'",
     f"function public.zdm_{MIG}_retype_b()"),
    ("add-unique lookup index", 'ops.AddUnique("t", ["b"], fix={"b": "b + id"})',
     f"CREATE INDEX zdm_{MIG}_unique_t_b_key_lookup ON t (note)",
     f"index public.zdm_{MIG}_unique_t_b_key_lookup"),
    ("set-not-null helper", 'ops.SetNotNull("t", "b", fill="0")',
     f"ALTER TABLE t ADD CONSTRAINT zdm_{MIG}_b_nn CHECK (b > -1)", f"constraint zdm_{MIG}_b_nn on t"),
    ("add-column trigger", 'ops.AddColumn("t", "c", "int", up="b + 1")',
     f"CREATE FUNCTION zdm_{MIG}_add_c() RETURNS int LANGUAGE sql AS 'SELECT 1'",
     f"function public.zdm_{MIG}_add_c()"),
    ("set-default memo", 'ops.SetDefault("t", "b", "7")',
     f"CREATE FUNCTION zdm_{MIG}_default_b_memo() RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb'",
     f"function public.zdm_{MIG}_default_b_memo()"),
    ("drop-column memo", 'ops.DropColumn("t", "note")',
     f"CREATE FUNCTION zdm_{MIG}_drop_note_memo() RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb'",
     f"function public.zdm_{MIG}_drop_note_memo()"),
    ("version schema", 'ops.RenameColumn("t", "b", "b2", mode="view")',
     f"CREATE SCHEMA zdm_{MIG}", f"schema zdm_{MIG}"),
    ("version schema (rename table)", 'ops.RenameTable("r", "r2", mode="view")',
     f"CREATE SCHEMA zdm_{MIG}; COMMENT ON SCHEMA zdm_{MIG} IS "
     """'{"zdmigrate_version_schema": "other"}'""", f"schema zdm_{MIG}"),
]


def _write(folder: Path, operation: str) -> None:
    folder.mkdir(exist_ok=True)
    write_migration(folder, MIG, f'''
        from zdmigrate import ops
        revision = "{MIG}"
        down_revision = None
        operations = [{operation}]
    ''')


@pytest.mark.parametrize(("case", "operation", "create", "holder"), CASES, ids=[c[0] for c in CASES])
def test_a_generated_name_held_by_a_user_object_is_refused_and_nothing_changes(
    cli: Cli, dsn: str, migrations_dir: Path, case: str, operation: str, create: str, holder: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(BASE)
        conn.execute(create)
    _write(migrations_dir, operation)
    before = _catalog(dsn)
    code, out, err = cli("phase", "advance", "--to", "expand")
    assert code == 2, (out, err)
    assert "is already taken by " + holder in err, err
    assert "which zdmigrate did not create for this migration" in err
    assert "rename or drop that object" in err
    assert "nothing was changed" in err
    assert "Traceback" not in err
    with psycopg.connect(dsn) as conn:  # zdmigrate's own state: not even created
        assert conn.execute("SELECT to_regnamespace('zdmigrate')").fetchone() == (None,)
    assert _catalog(dsn) == before


def test_the_message_names_the_operation_and_what_would_take_the_name(
    cli: Cli, dsn: str, migrations_dir: Path
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(BASE)
        conn.execute(f"CREATE INDEX {_index_copy('t_a_idx')} ON t (b)")
    _write(migrations_dir, RENAME)
    code, _, err = cli("phase", "advance")
    assert code == 2
    assert "rename column public.t.a to a2" in err
    assert f"the name {_index_copy('t_a_idx')}, which zdmigrate would give the copy of index t_a_idx" in err


def test_an_index_marked_as_this_migrations_copy_is_accepted(
    cli: Cli, dsn: str, migrations_dir: Path
) -> None:
    """What an earlier attempt of this migration made (it carries the marker) is not refused;
    a mark of another migration is."""
    copy = _index_copy("t_a_idx")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(BASE)
        conn.execute(f"CREATE INDEX {copy} ON t (b)")
        conn.execute(f"""COMMENT ON INDEX {copy} IS '{{"zdm_carry" : "0009_other", "column" : "a"}}'""")
    _write(migrations_dir, RENAME)
    code, _, err = cli("phase", "advance", "--to", "expand")
    assert code == 2 and f"is already taken by index public.{copy}" in err
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"""COMMENT ON INDEX {copy} IS '{{"zdm_carry" : "{MIG}", "column" : "a"}}'""")
    code, out, err = cli("phase", "advance", "--to", "expand")
    assert code == 0, (out, err)


def test_this_migrations_own_version_schema_is_accepted(
    cli: Cli, dsn: str, migrations_dir: Path
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(BASE)
        conn.execute(f"CREATE SCHEMA zdm_{MIG}; COMMENT ON SCHEMA zdm_{MIG} IS "
                     f"""'{{"zdmigrate_version_schema": "{MIG}", "read_new_from": {{}}}}'""")
    _write(migrations_dir, 'ops.RenameColumn("t", "b", "b2", mode="view")')
    code, out, err = cli("phase", "advance", "--to", "expand")
    assert code == 0, (out, err)
    with psycopg.connect(dsn) as conn:
        assert conn.execute(f"SELECT to_regclass('zdm_{MIG}.t')").fetchone() is not None


def test_no_user_object_in_the_way_runs_the_whole_rename(
    cli: Cli, dsn: str, migrations_dir: Path
) -> None:
    """The name checks do not refuse a clean schema (the control for the cases above)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(BASE)
    _write(migrations_dir, RENAME)
    code, out, err = cli("phase", "advance", "--to", "switch-read")
    assert code == 0, (out, err)
    with psycopg.connect(dsn) as conn:
        copies = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname IN (%s, %s)",
            [_index_copy("t_a_idx"), _index_copy("t_a_key")]).fetchone()
        checks = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE conname IN (%s, %s)",
            [_constraint_copy("a", "t_a_check"), _constraint_copy("a", "r_ta_fkey")]).fetchone()
    assert copies == (2,) and checks == (2,)  # the names the tests above compute are the real ones


def test_a_column_under_the_shadow_columns_name_is_refused(
    cli: Cli, dsn: str, migrations_dir: Path
) -> None:
    """ChangeColumnType without new_name adds ``zdm_new_<column>``: a user column of that name
    is refused the same way (its own requirement says so)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(BASE)
        conn.execute("ALTER TABLE t ADD COLUMN zdm_new_b int")
    _write(migrations_dir, 'ops.ChangeColumnType("t", "b", "bigint", up="b::bigint")')
    before = _catalog(dsn)
    code, out, err = cli("phase", "advance", "--to", "expand")
    assert code == 2, (out, err)
    assert "column 'zdm_new_b' already exists in table public.t" in err
    assert _catalog(dsn) == before


def test_an_opted_in_version_schema_name_held_by_a_user_schema_is_refused(
    cli: Cli, dsn: str, migrations_dir: Path
) -> None:
    """`version_schema = True` generates the schema ``zdm_<revision>`` too: a user's
    schema of that name is refused like every other generated name."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(BASE)
        conn.execute(f"CREATE SCHEMA zdm_{MIG}")
    migrations_dir.mkdir(exist_ok=True)
    write_migration(migrations_dir, MIG, f'''
        from zdmigrate import ops
        revision = "{MIG}"
        down_revision = None
        version_schema = True
        operations = [ops.DropColumn("t", "note")]
    ''')
    before = _catalog(dsn)
    code, out, err = cli("phase", "advance", "--to", "expand")
    assert code == 2, (out, err)
    assert f"version schema of {MIG}" in err
    assert f"is already taken by schema zdm_{MIG}" in err, err
    assert "Traceback" not in err
    assert _catalog(dsn) == before
