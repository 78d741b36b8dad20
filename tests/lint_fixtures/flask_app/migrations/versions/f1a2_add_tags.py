"""add tags

Revision ID: f1a2
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "f1a2"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tags", sa.Text(), nullable=False))
        batch_op.create_index("ix_posts_tags", ["tags"], unique=False)
