"""Wishlists are called saved items in the product now; the table follows."""

from zdmigrate import ops

revision = "0016_saved_items"
down_revision = "0015_orders_status_explicit"

# shop 3.3 uses saved_items, no longer wishlists
compat = {"shop": {"read_new_from": "3.3", "old_unused_from": "3.3"}}

operations = [ops.RenameTable("wishlists", "saved_items")]
