"""A revision that prints when imported and when it runs."""
import sqlalchemy as sa
from alembic import op

print("r05 imported")

revision = "r05"
down_revision = "r04"


def upgrade():
    print("r05 upgrading")
    op.add_column("users", sa.Column("note", sa.Text()))
