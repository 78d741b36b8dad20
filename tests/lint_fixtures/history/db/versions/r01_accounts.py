"""Create accounts (a new table: its index needs no CONCURRENTLY)."""
import sqlalchemy as sa
from alembic import op

revision = "r01"
down_revision = None


def upgrade():
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.VARCHAR(100)),
    )
    op.create_index("ix_accounts_name", "accounts", ["name"])
