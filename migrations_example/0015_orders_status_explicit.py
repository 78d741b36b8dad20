"""New app versions always set an order's status, so its default goes (at contract)."""

from zdmigrate import ops

revision = "0015_orders_status_explicit"
down_revision = "0014_products_description_optional"

operations = [ops.DropDefault("orders", "status")]
