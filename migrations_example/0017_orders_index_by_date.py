"""Customers' order history is listed newest first: a better index replaces the old one."""

from zdmigrate import ops

revision = "0017_orders_index_by_date"
down_revision = "0016_saved_items"

# shop 3.4 no longer runs the query the old index served
compat = {"shop": {"old_unused_from": "3.4"}}

operations = [
    ops.CreateIndex("orders_user_id_created_at_idx", "orders", ["user_id", "created_at"]),
    ops.DropIndex("orders_user_id_idx"),
]
