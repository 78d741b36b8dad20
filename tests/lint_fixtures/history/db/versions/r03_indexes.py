"""Ending the transaction before CREATE INDEX CONCURRENTLY, both common ways."""
from alembic import op

revision = "r03"
down_revision = "r02"


def upgrade():
    op.create_index("ix_users_email", "users", ["email"])
    op.get_bind().commit()
    op.create_index("ix_users_nick", "users", ["nick"], postgresql_concurrently=True)
    with op.get_context().autocommit_block():
        op.create_index("ix_users_bio", "users", ["bio"], postgresql_concurrently=True)
