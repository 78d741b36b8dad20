"""A revision that imports the app's own package (found through prepend_sys_path)."""
import sqlalchemy as sa
from alembic import op
from shopapp.models import SKU_LENGTH

revision = "r06"
down_revision = "r05"


def upgrade():
    op.add_column("products", sa.Column("sku", sa.String(SKU_LENGTH)))
    op.create_index("ix_products_sku", "products", ["sku"])
