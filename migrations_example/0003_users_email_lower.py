"""Users get a normalised email for case-insensitive login.

Old app versions do not know email_lower: the trigger fills it from email for
the rows they write; backfill fills the rest; contract makes it NOT NULL.
"""

from zdmigrate import ops

revision = "0003_users_email_lower"
down_revision = "0002_rename_users_name"

compat = {"shop": {"read_new_from": "2.1", "old_unused_from": "2.1"}}

operations = [ops.AddColumn("users", "email_lower", "text", nullable=False, up="lower(email)")]
