"""Verification of a backfill: how many rows still disagree, and a few of their keys.

The condition that marks a row as wrong, in order of preference:

1. the step's `verify` (true for a row whose new shape disagrees with the old);
2. else its `where` (a row still matching it was never done);
3. else ``ROW(set columns) IS DISTINCT FROM ROW(set expressions)``: after the
   backfill, with dual-write in place, every row holds what `set` computes. This
   is only right for deterministic expressions: with ``now()`` or ``random()``
   in `set`, give `verify`.

Warning: this counts over the whole table (a sequential scan), in the caller's
transaction; it takes no locks beyond ACCESS SHARE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from zdmigrate.backfill.keys import find_key, resolve_table
from zdmigrate.backfill.walkers import author_sql, differs_condition
from zdmigrate.errors import Blocker
from zdmigrate.steps import BackfillStep


@dataclass(frozen=True)
class Verification:
    """Rows whose new shape disagrees with the old; `sample_keys` names a few."""

    table: str
    mismatches: int
    sample_keys: list[dict[str, Any]] = field(default_factory=list)
    condition: str = ""

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    def describe_keys(self) -> str:
        return ", ".join(
            "(" + ", ".join(f"{k}={v}" for k, v in key.items()) + ")" for key in self.sample_keys
        )

    def blocker(self, migration_id: str) -> Blocker | None:
        """The switch-read gate's reason to refuse, or None when every row agrees."""
        if self.ok:
            return None
        return Blocker(
            "backfill-unverified",
            f"{self.mismatches} row(s) of {self.table} disagree between the old and the new "
            f"shape (e.g. {self.describe_keys()}); run `zdmigrate backfill {migration_id} "
            "--again`, and check that every app version writes both shapes",
            {"table": self.table, "mismatches": self.mismatches, "sample_keys": self.sample_keys},
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table, "mismatches": self.mismatches,
            "sample_keys": self.sample_keys, "condition": self.condition,
        }


def mismatch_condition(step: BackfillStep) -> sql.Composable:
    if step.verify:
        return author_sql(step.verify)
    if step.where:
        return author_sql(step.where)
    return differs_condition(step)


def verify_backfill(
    conn: psycopg.Connection[Any], step: BackfillStep, *, sample: int = 5
) -> Verification:
    """Count the rows of `step`'s table that disagree, with up to `sample` of their keys.

        v = verify_backfill(conn, step)
        if v.mismatches:
            print("still wrong:", v.describe_keys())
    """
    table = resolve_table(conn, step)
    key = find_key(conn, table)
    condition = sql.SQL("({})").format(mismatch_condition(step))
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {}").format(table.ident, condition), []
    ).fetchone()
    mismatches = int(row[0]) if row else 0
    keys: list[dict[str, Any]] = []
    if mismatches and sample > 0:
        columns = list(key.columns) if key.columns else ["ctid"]
        idents = (
            [sql.Identifier(c) for c in key.columns] if key.columns else [sql.SQL("ctid")]
        )
        select = sql.SQL(", ").join(
            sql.SQL("{}::text AS {}").format(i, sql.Identifier(f"_zdm_key{n}"))
            for n, i in enumerate(idents)
        )
        order = sql.SQL(", ").join(idents)
        rows = conn.execute(
            sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT %s").format(
                select, table.ident, condition, order
            ),
            [sample],
        ).fetchall()
        keys = [dict(zip(columns, r, strict=True)) for r in rows]
    return Verification(
        str(table), mismatches, keys, condition.as_string(conn).replace("%%", "%")
    )
