"""A small Alembic project of our own (alembic.ini, env.py, versions/) for the adoption tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

ENV_PY = '''
from alembic import context
from sqlalchemy import create_engine

url = context.config.get_main_option("sqlalchemy.url")
if context.is_offline_mode():
    context.configure(url=url, literal_binds=True, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, transaction_per_migration=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()
'''

INI = '''
[alembic]
script_location = %(here)s/migrations
sqlalchemy.url = {url}
'''

BRIDGE = '''
from zdmigrate.alembic_bridge import alembic_functions
upgrade, downgrade = alembic_functions(globals())
'''

CREATE_ACCOUNTS = '''
"""create accounts"""
from alembic import op
import sqlalchemy as sa

revision = "98106f172350"
down_revision = None


def upgrade():
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("email", sa.Text),
    )
    op.create_index("ix_accounts_username", "accounts", ["username"])


def downgrade():
    op.drop_table("accounts")
'''


def sqlalchemy_url(db_url: str) -> str:
    """The test database's URL for SQLAlchemy with psycopg 3."""
    return db_url.replace("postgresql://", "postgresql+psycopg://", 1)


def alembic_project(root: Path, db_url: str, revisions: dict[str, str]) -> Path:
    """Write alembic.ini, migrations/env.py and migrations/versions/<name>.py; returns root."""
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    (root / "migrations" / "script.py.mako").write_text(SCRIPT_MAKO)
    url = sqlalchemy_url(db_url).replace("%", "%%")
    (root / "alembic.ini").write_text(INI.format(url=url))
    for name, text in revisions.items():
        (versions / f"{name}.py").write_text(textwrap.dedent(text).lstrip())
    return root


SCRIPT_MAKO = '''"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade():
    ${upgrades if upgrades else "pass"}


def downgrade():
    ${downgrades if downgrades else "pass"}
'''
