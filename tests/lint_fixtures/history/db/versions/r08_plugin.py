"""A revision that uses an Alembic plugin's op (registered by env.py or preload)."""
from alembic import op

revision = "r08"
down_revision = "r07"


def upgrade():
    op.rename_enum_label("order_status", "shipped", "sent")
