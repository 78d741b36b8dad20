"""Order totals move from integer cents to a numeric amount.

Old versions write total_cents, new versions total; the two-way trigger
converts between them, so each version reads what the other wrote.
"""

import sqlalchemy as sa

from zdmigrate import ops

revision = "0008_orders_total_numeric"
down_revision = "0007_order_status_refunded"

compat = {"shop": {"read_new_from": "3.0", "old_unused_from": "3.0"}}

operations = [
    ops.ChangeColumnType(
        "orders", "total_cents", sa.Numeric(12, 2), new_name="total",
        up="total_cents / 100.0", down="round(total * 100)::bigint",
    ),
]
