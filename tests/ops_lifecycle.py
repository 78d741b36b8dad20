"""Lifecycle harness for operations: the real engine, a migrations directory, two app versions.

A `Lifecycle` writes one migration file holding the operations under test into
a temporary directory and drives it with `engine.advance` / `engine.rollback`,
so requirements, step recording and the batched backfill all run for real.
`snapshot` captures the user-visible schema so a rollback can be compared with
the schema before expand, exactly. `lifecycle` and `rollbacks` drive one through
every phase, or back from every phase before contract, with the test's clients
writing after each.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from zdmigrate import engine
from zdmigrate.config import Settings
from zdmigrate.phases import WORK_PHASES, Phase

Conn = psycopg.Connection[Any]
MIGRATION_ID = "0001_op_under_test"
BEFORE_CONTRACT = [Phase.EXPAND, Phase.DUAL_WRITE, Phase.BACKFILL, Phase.SWITCH_READ]

_SNAPSHOT = {
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attnum
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v')
          AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2""",
    "constraints": """
        SELECT c.relname, k.conname, pg_get_constraintdef(k.oid), k.convalidated
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) ORDER BY 1, 2""",
    "indexes": """
        SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) ORDER BY 1""",
    "relations": """
        SELECT n.nspname, c.relname, c.relkind FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'S') ORDER BY 1, 2""",
    "triggers": """
        SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND NOT t.tgisinternal ORDER BY 1, 2""",
    "functions": """
        SELECT n.nspname, p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY(%(schemas)s) ORDER BY 1, 2""",
    "enums": """
        SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
        FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = ANY(%(schemas)s) GROUP BY 1 ORDER BY 1""",
}


def user_schemas(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%%' "
        "AND nspname NOT IN ('information_schema', 'zdmigrate')"
    ).fetchall()
    return sorted(r[0] for r in rows)


def snapshot(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """The user-visible schema: columns, constraints, indexes, relations, triggers, functions."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        schemas = user_schemas(conn)
        out = {k: [tuple(r) for r in conn.execute(q, {"schemas": schemas}).fetchall()]
               for k, q in _SNAPSHOT.items()}
        # column order does not matter for "the same schema"; attnum is kept apart
        out["columns"] = [r[:5] for r in out["columns"]]
        return out


@dataclass
class Lifecycle:
    """One migration holding `operations` (Python source), run by the real engine."""

    directory: Path
    db_url: str
    operations: str
    imports: str = "import sqlalchemy as sa\nfrom zdmigrate import ops\n"

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        source = (
            f'"""Operation under test."""\n{self.imports}\n'
            f'revision = "{MIGRATION_ID}"\ndown_revision = None\n\n'
            f"operations = {textwrap.dedent(self.operations).strip()}\n"
        )
        (self.directory / f"{MIGRATION_ID}.py").write_text(source)
        self.settings = Settings.load(
            {"database_url": self.db_url, "migrations": self.directory},
            environ={}, pyproject=self.directory / "no-pyproject.toml",
        )

    def advance(self, phase: Phase) -> None:
        engine.advance(self.settings, MIGRATION_ID, to=phase,
                       override_reason="lifecycle test: no app fleet")

    def rollback(self, phase: Phase) -> None:
        engine.rollback(self.settings, MIGRATION_ID, to=phase)


def setup(dsn: str, sql_text: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql_text)


def one(conn: Conn, query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row[0]


def lifecycle(
    tmp_path: Path, db_url: str, dsn: str, operations: str,
    on_phase: Callable[[Conn, Phase], None],
) -> None:
    """Advance through every phase; after each, let the clients write and check."""
    lc = Lifecycle(tmp_path / "migrations", db_url, operations)
    for phase in WORK_PHASES:
        lc.advance(phase)
        with psycopg.connect(dsn, autocommit=True) as conn:
            on_phase(conn, phase)


def rollbacks(
    tmp_path: Path, db_url: str, dsn: str, operations: str,
    on_phase: Callable[[Conn, Phase], None] | None = None,
) -> None:
    """From every phase before contract, roll back to pending: the schema is as before."""
    before = snapshot(dsn)
    lc = Lifecycle(tmp_path / "migrations", db_url, operations)
    for last in BEFORE_CONTRACT:
        for phase in BEFORE_CONTRACT[: BEFORE_CONTRACT.index(last) + 1]:
            lc.advance(phase)
            if on_phase is not None:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    on_phase(conn, phase)
        lc.rollback(Phase.PENDING)
        assert snapshot(dsn) == before, f"rollback from {last} left the schema changed"
