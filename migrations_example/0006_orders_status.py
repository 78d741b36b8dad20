"""Orders get a status; existing and old-version orders start as 'new'."""

from zdmigrate import ops

revision = "0006_orders_status"
down_revision = "0005_order_status_enum"

# shop 2.2 writes orders.status on every insert
compat = {"shop": {"old_unused_from": "2.2"}}

operations = [
    ops.AddColumn("orders", "status", "order_status", nullable=False, default="'new'"),
]
