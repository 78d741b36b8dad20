"""Every product has a currency: EUR unless said otherwise."""

from zdmigrate import ops

revision = "0011_products_currency"
down_revision = "0010_order_items_keys"

# shop 3.2 always writes products.currency
compat = {"shop": {"old_unused_from": "3.2"}}

operations = [
    ops.SetDefault("products", "currency", "'EUR'"),
    ops.SetNotNull("products", "currency", fill="'EUR'"),
]
