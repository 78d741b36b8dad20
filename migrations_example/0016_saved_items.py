"""Wishlists are called saved items in the product now; the table follows."""

from zdmigrate import ops

revision = "0016_saved_items"
down_revision = "0015_orders_status_explicit"

operations = [ops.RenameTable("wishlists", "saved_items")]
