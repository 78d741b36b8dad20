"""Products may be listed before anyone has written their description."""

from zdmigrate import ops

revision = "0014_products_description_optional"
down_revision = "0013_orders_user_index"

operations = [ops.DropNotNull("products", "description")]
