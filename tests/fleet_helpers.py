"""Helpers for the fleet and gate tests: a small rename migration set and what to check after."""

from __future__ import annotations

import textwrap
from pathlib import Path

import psycopg

COMPAT = '{"shop": {"dual_write_from": "1.5", "read_new_from": "2.0", "old_unused_from": "2.0"}}'

USERS = '''
revision = "0001_users"
down_revision = None


def expand(ctx):
    ctx.execute("CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text)")


def rollback_expand(ctx):
    ctx.execute("DROP TABLE IF EXISTS users")
'''

# the app writes both columns from shop 1.5 on: no sync trigger
RENAME_BY_APP = f'''
revision = "0002_rename"
down_revision = "0001_users"
compat = {COMPAT}


def expand(ctx):
    ctx.execute("ALTER TABLE users ADD COLUMN full_name text")


def rollback_expand(ctx):
    ctx.execute("ALTER TABLE users DROP COLUMN IF EXISTS full_name")


def backfill(ctx):
    ctx.backfill("users", set={{"full_name": "name"}}, where="full_name IS DISTINCT FROM name")


def contract(ctx):
    ctx.execute("ALTER TABLE users DROP COLUMN name")
'''

# a trigger keeps both columns equal: app versions need not dual-write
RENAME_BY_TRIGGER = f'''
revision = "0002_rename"
down_revision = "0001_users"
compat = {COMPAT}


def expand(ctx):
    ctx.execute("ALTER TABLE users ADD COLUMN full_name text")
    ctx.execute("""CREATE FUNCTION users_sync() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.full_name := coalesce(NEW.full_name, NEW.name); RETURN NEW; END $$""")
    ctx.execute("CREATE TRIGGER users_sync BEFORE INSERT OR UPDATE ON users "
                "FOR EACH ROW EXECUTE FUNCTION users_sync()")


def rollback_expand(ctx):
    ctx.execute("DROP TRIGGER IF EXISTS users_sync ON users")
    ctx.execute("DROP FUNCTION IF EXISTS users_sync()")
    ctx.execute("ALTER TABLE users DROP COLUMN IF EXISTS full_name")


def backfill(ctx):
    ctx.backfill("users", set={{"full_name": "name"}}, where="full_name IS DISTINCT FROM name")


def contract(ctx):
    ctx.execute("DROP TRIGGER users_sync ON users")
    ctx.execute("DROP FUNCTION users_sync()")
    ctx.execute("ALTER TABLE users DROP COLUMN name")
'''


def write_migrations(folder: Path, rename: str = RENAME_BY_APP) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "0001_users.py").write_text(textwrap.dedent(USERS).lstrip())
    (folder / "0002_rename.py").write_text(textwrap.dedent(rename).lstrip())
    return folder


def phase_of(dsn: str, migration_id: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT phase FROM zdmigrate.migrations WHERE id = %s",
                           [migration_id]).fetchone()
    return str(row[0]) if row else "pending"


def columns(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT column_name FROM information_schema.columns "
                            "WHERE table_schema = 'public' AND table_name = 'users'").fetchall()
    return {r[0] for r in rows}
