"""The library app code imports: heartbeats, each migration's phase, dual-write helpers.

    from zdmigrate.runtime import Runtime

    with Runtime(database_url, app="shop", version="2.0.1") as rt:
        dw = rt.dual_write("0002_rename_users_name", {"name": "full_name"})
        values = dw.write({"name": "Ann"})

It stays light on purpose: importing it loads psycopg and zdmigrate's errors and
phases, never Alembic, click, pglast, rich or the rest of zdmigrate. SQLAlchemy
helpers live in `zdmigrate.runtime.sqla`, imported only when used.
"""

from zdmigrate.phases import Phase
from zdmigrate.runtime._dual_write import DualWrite
from zdmigrate.runtime._runtime import Runtime

__all__ = ["DualWrite", "Phase", "Runtime"]
