"""Which migration a command acts on when none is named: decided here, for every command."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from zdmigrate.migration import Migration
from zdmigrate.phases import Phase

Purpose = Literal["advance", "rollback", "backfill"]


def default_migration(
    migrations: Sequence[Migration],
    phase_of: Callable[[str], Phase],
    purpose: Purpose,
    *,
    interrupted: Callable[[str], bool] = lambda migration_id: False,
) -> Migration | None:
    """The migration `purpose` acts on by default, or None when there is none.

    - advance: the oldest migration not complete;
    - backfill: the oldest migration waiting for its backfill (at dual-write);
    - rollback: the newest migration started (past pending, or with an
      `interrupted` phase); `interrupted` is asked only of pending migrations.
    """
    if purpose == "rollback":
        started = [
            m for m in migrations
            if phase_of(m.id) is not Phase.PENDING or interrupted(m.id)
        ]
        return started[-1] if started else None
    if purpose == "backfill":
        waiting = [m for m in migrations if phase_of(m.id) is Phase.DUAL_WRITE]
        return waiting[0] if waiting else None
    pending = [m for m in migrations if not phase_of(m.id).is_complete]
    return pending[0] if pending else None
