"""The catalog: products, order lines and customers' wishlists."""

import sqlalchemy as sa

from zdmigrate import ops

revision = "0009_catalog"
down_revision = "0008_orders_total_numeric"

operations = [
    ops.CreateTable(
        "products",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("sku", sa.Text, nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("price", sa.Numeric(12, 2), nullable=False),
        sa.Column("currency", sa.Text),
    ),
    ops.CreateTable(
        "order_items",
        sa.Column("order_id", sa.BigInteger, sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("product_id", sa.BigInteger, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False, server_default="1"),
    ),
    ops.CreateTable(
        "wishlists",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("product_id", sa.BigInteger, nullable=False),
    ),
]
