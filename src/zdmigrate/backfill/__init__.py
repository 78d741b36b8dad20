"""The backfill engine: batched, throttled, resumable, parallel UPDATEs of a live table.

    from zdmigrate.backfill import run_backfill, verify_backfill

    result = run_backfill(settings, migration_id="0003_email_lower", step=step, workers=2)
    print(result.rows_done, result.verification.mismatches)

See docs/backfill.md. The modules: `keys` (which key a table is walked by),
`walkers` (the SQL of a batch), `claims` (workers' key ranges in the state
tables), `sizing` (adaptive batch size), `throttle` (lag, rate),
`progress` (events for an observer; `zdmigrate.output.progress` draws them), `verify` (the mismatch count), `control`
(pause/resume), `runner` (the workers).
"""

from zdmigrate.backfill.control import progress, restart_finished, set_paused
from zdmigrate.backfill.options import BackfillOptions
from zdmigrate.backfill.progress import BackfillEvent, Reporter
from zdmigrate.backfill.runner import BackfillResult, run_backfill
from zdmigrate.backfill.throttle import LagSource, PrimaryLag, ReplicaLag
from zdmigrate.backfill.verify import Verification, verify_backfill

__all__ = [
    "BackfillEvent",
    "BackfillOptions",
    "BackfillResult",
    "LagSource",
    "PrimaryLag",
    "ReplicaLag",
    "Reporter",
    "Verification",
    "progress",
    "restart_finished",
    "run_backfill",
    "set_paused",
    "verify_backfill",
]
