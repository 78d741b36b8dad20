"""Order lines get their composite primary key and a key to products."""

from zdmigrate import ops

revision = "0010_order_items_keys"
down_revision = "0009_catalog"

operations = [
    ops.AddPrimaryKey("order_items", ["order_id", "product_id"]),
    ops.AddForeignKey("order_items", ["product_id"], "products", ["id"]),
]
