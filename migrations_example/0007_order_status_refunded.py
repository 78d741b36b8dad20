"""Refunds become a status of their own.

PostgreSQL cannot remove an enum value: rolling this back leaves 'refunded' in place.
"""

from zdmigrate import ops

revision = "0007_order_status_refunded"
down_revision = "0006_orders_status"

operations = [ops.AddEnumValue("order_status", "refunded", after="shipped")]
