"""One account per email address, whatever its case."""

from zdmigrate import ops

revision = "0004_users_email_lower_unique"
down_revision = "0003_users_email_lower"

operations = [ops.AddUnique("users", ["email_lower"])]
