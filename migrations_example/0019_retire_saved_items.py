"""Saved items are retired (archived at contract); users.email gives way to email_lower.

Old app versions still read users.email until contract: the trigger fills it
from email_lower for the rows new versions write.
"""

from zdmigrate import ops

revision = "0019_retire_saved_items"
down_revision = "0018_order_totals_view"

# shop 4.0 no longer touches users.email or saved_items
compat = {"shop": {"old_unused_from": "4.0"}}

operations = [
    ops.DropTable("saved_items", archive="archive"),
    ops.DropColumn("users", "email", down="email_lower"),
]
