"""The catalog explains itself, prices may grow, and SKU prefix searches get an index.

Nothing here changes what an app version may write: comments and the replica
identity are metadata, numeric(12,2) -> numeric(14,2) widens in place (no
rewrite, every old value fits), and the new column is optional.
"""

from zdmigrate import ops

revision = "0021_catalog_metadata"
down_revision = "0020_products_details"

operations = [
    ops.SetComment("products", "What the shop sells"),
    ops.SetComment("products", "Stock keeping unit, unique per product", column="sku"),
    ops.AddColumn("orders", "gift_note", "text", comment="Printed on the packing slip"),
    ops.WidenColumnType("products", "price", "numeric(14,2)"),
    ops.CreateIndex("products_sku_prefix_idx", "products", ["sku"],
                    opclass={"sku": "text_pattern_ops"}, with_={"fillfactor": 90}),
    ops.SetReplicaIdentity("orders", "full"),
]
