"""Product descriptions are called details now.

Both names work until contract: old versions write description, new versions
details, and the two-way trigger keeps them equal.
"""

from zdmigrate import ops

revision = "0020_products_details"
down_revision = "0019_retire_saved_items"

# shop 4.1 reads and writes products.details
compat = {"shop": {"read_new_from": "4.1", "old_unused_from": "4.1"}}

operations = [ops.RenameColumn("products", "description", "details")]
