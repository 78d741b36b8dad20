"""`new`: scaffold a migration file after the current head, from a commented template."""

from __future__ import annotations

import re
from pathlib import Path

from zdmigrate.config import Settings
from zdmigrate.errors import BadInput
from zdmigrate.migration import load_migrations

_NAME_RE = re.compile(r"[^0-9a-z]+")

TEMPLATE = '''"""{title}"""

revision = "{revision}"
down_revision = {down_revision!r}

# Which app versions fit which phase (PEP 440 versions; any key may be left out):
# compat = {{"myapp": {{"dual_write_from": "1.5", "read_new_from": "2.0", "old_unused_from": "2.0"}}}}


def expand(ctx):
    """Add-only DDL: new columns, tables, indexes (CONCURRENTLY), NOT VALID constraints."""
    # ctx.execute("ALTER TABLE users ADD COLUMN full_name text")


def rollback_expand(ctx):
    """Undo expand (use IF EXISTS: it may run after an interrupted expand)."""
    # ctx.execute("ALTER TABLE users DROP COLUMN IF EXISTS full_name")


# def dual_write(ctx): ...       sync triggers, if the app does not write both shapes
# def backfill(ctx):             copy old rows, in batches
#     ctx.backfill("users", set={{"full_name": "name"}}, where="full_name IS NULL")
# def switch_read(ctx): ...      e.g. VALIDATE CONSTRAINT
# def contract(ctx):             destructive DDL, once no old app version runs
#     ctx.execute("ALTER TABLE users DROP COLUMN name")
'''


def new(settings: Settings, name: str) -> Path:
    """Scaffold a migration file after the current head; returns its path."""
    slug = _NAME_RE.sub("_", name.lower()).strip("_")
    if not slug:
        raise BadInput(f"migration name {name!r} has no letters or digits")
    folder = settings.migrations
    if not folder.is_dir():
        raise BadInput(f"migrations directory {folder} does not exist", hint="run `zdmigrate init`")
    migrations = load_migrations(folder)
    numbers = [int(m.group(1)) for p in folder.glob("*.py") if (m := re.match(r"(\d+)_", p.name))]
    revision = f"{(max(numbers) + 1 if numbers else 1):04d}_{slug}"
    path = folder / f"{revision}.py"
    if path.exists():
        raise BadInput(f"{path} already exists")
    head = migrations[-1].id if migrations else None
    path.write_text(TEMPLATE.format(title=name, revision=revision, down_revision=head))
    return path
