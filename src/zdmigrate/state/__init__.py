"""zdmigrate's own schema in the target database: the only code that reads or writes it.

One module per table, each a set of functions that take a psycopg connection
and the state schema's name:

- `schema`: creating and upgrading the schema (``schema_version``);
- `migrations`: each migration's last completed phase, and phase-change notices;
- `phase_log`: every advance/rollback attempt: who, when, from, to, outcome, override;
- `steps`: the steps of an unfinished phase that are started or done (for resuming);
- `backfills`: progress of each backfill and the key ranges its workers claimed;
- `instances`: live app instances (heartbeats, declarations, remembered sessions);
- `run_lock`: who holds the one-run-per-database advisory lock, and since when.

`Store` is the one door for code outside this package: it binds a connection and
a schema, one attribute per table (``store.migrations.set_phase(...)``). This
package exports it and the row types its methods return, not the table functions
(`tests/test_architecture.py` holds code outside ``state/`` to that).

Light on purpose: `zdmigrate.runtime` imports this package, so nothing here
imports more than the stdlib, psycopg and `zdmigrate.phases`.

Warning: the methods run in the caller's transaction unless they say otherwise.
"""

from zdmigrate.state.backfills import BackfillRow, RangeRow, Totals
from zdmigrate.state.migrations import MigrationRow
from zdmigrate.state.run_lock import LockHolder
from zdmigrate.state.schema import CURRENT_VERSION
from zdmigrate.state.store import Store

__all__ = [
    "CURRENT_VERSION",
    "BackfillRow",
    "LockHolder",
    "MigrationRow",
    "RangeRow",
    "Store",
    "Totals",
]
