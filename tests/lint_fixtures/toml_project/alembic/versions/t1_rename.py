"""A revision of a project configured by [tool.alembic] in pyproject.toml."""
from alembic import op

revision = "t1"
down_revision = None


def upgrade():
    op.rename_table("invoices", "bills")
