"""Customers' order history is listed newest first: a better index replaces the old one."""

from zdmigrate import ops

revision = "0017_orders_index_by_date"
down_revision = "0016_saved_items"

operations = [
    ops.CreateIndex("orders_user_id_created_at_idx", "orders", ["user_id", "created_at"]),
    ops.DropIndex("orders_user_id_idx"),
]
