"""Order lines go with their order, and the SKU key gets a clearer name.

The new foreign key (ON DELETE CASCADE) is added NOT VALID at expand and
validated at switch-read; the old one is dropped at contract, as is the old
constraint name, which shop versions before 4.1 use in ON CONFLICT ON CONSTRAINT.
"""

from zdmigrate import ops

revision = "0022_order_items_cascade"
down_revision = "0021_catalog_metadata"

# shop 4.1 no longer names products_sku_key
compat = {"shop": {"old_unused_from": "4.1"}}

operations = [
    ops.AddForeignKey("order_items", ["order_id"], "orders", ["id"],
                      name="order_items_order_id_cascade_fkey", on_delete="CASCADE"),
    ops.DropConstraint("order_items", "order_items_order_id_fkey"),
    ops.RenameConstraint("products", "products_sku_key", "products_sku_unique"),
]
