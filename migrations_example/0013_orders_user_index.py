"""Look orders up by customer."""

from zdmigrate import ops

revision = "0013_orders_user_index"
down_revision = "0012_products_price_positive"

operations = [ops.CreateIndex("orders_user_id_idx", "orders", ["user_id"])]
