"""A reporting view that no operation covers: plain SQL, with its rollback."""

from zdmigrate import ops

revision = "0018_order_totals_view"
down_revision = "0017_orders_index_by_date"

operations = [
    ops.SQL(
        expand="CREATE VIEW public.order_totals_by_user AS "
        "SELECT user_id, count(*) AS orders, sum(total) AS total FROM public.orders GROUP BY user_id",
        rollback="DROP VIEW public.order_totals_by_user",
    ),
]
