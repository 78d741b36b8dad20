"""Order lines get their composite primary key and a key to products."""

from zdmigrate import ops

revision = "0010_order_items_keys"
down_revision = "0009_catalog"

# shop 3.1 always sets both keys of an order item
compat = {"shop": {"old_unused_from": "3.1"}}

operations = [
    ops.AddPrimaryKey("order_items", ["order_id", "product_id"]),
    ops.AddForeignKey("order_items", ["product_id"], "products", ["id"]),
]
