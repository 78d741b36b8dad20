"""Drops an index and a constraint, then their table: one finding, the DROP TABLE."""
from alembic import op

revision = "r09"
down_revision = "r08"


def upgrade():
    op.drop_index("ix_orders_user", table_name="orders")
    op.drop_constraint("fk_orders_user", "orders", type_="foreignkey")
    op.drop_table("orders")
