"""An enum for the life of an order."""

from zdmigrate import ops

revision = "0005_order_status_enum"
down_revision = "0004_users_email_lower_unique"

operations = [ops.CreateEnum("order_status", ["new", "paid", "shipped"])]
