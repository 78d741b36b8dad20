"""Prices are positive; a zero or negative price written by an old version becomes 0.01."""

from zdmigrate import ops

revision = "0012_products_price_positive"
down_revision = "0011_products_currency"

# contract drops the trigger that repairs old versions' prices: shop 3.2 writes only positive ones
compat = {"shop": {"old_unused_from": "3.2"}}

operations = [
    ops.AddCheck("products", "products_price_positive", "price > 0", fix={"price": "0.01"}),
]
