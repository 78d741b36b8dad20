"""The shop fleet of the chaos and strategy tests: the demo's app instances, with an oracle.

The instances are the demo's (`zdmigrate.demo.instances.AppInstance`: a thread
with a connection of its own named ``shop@VERSION``, so the fleet check sees it
as a session, and a `zdmigrate.runtime.Runtime` for heartbeats and phases).
What the tests add is the oracle: `ModelledShop`, the requests each version
sends over the users.name -> full_name rename (migrations_example/0002, compat
``dual_write_from 1.5, read_new_from 2.0, old_unused_from 2.0``), checked
against `Model`:

- 1.4 writes and reads ``name`` only;
- 1.5 writes both columns once expand is done and reads the one the phase says
  (through ``Runtime.dual_write``);
- 2.0 writes and reads ``full_name`` only.

`Model` is what the database must hold at the end: every committed write goes
into it. A write whose commit outcome is unknown (the connection died under it)
is settled by reading the row back after reconnecting; a row that is neither the
old nor the new value is a wrong row.

Surprise: instances only ever update the rows they inserted, and read those and
the seed rows (which nobody writes), so the model needs no cross-thread ordering.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from zdmigrate.demo.instances import AppInstance
from zdmigrate.demo.shop import DUAL_WRITING, OLD, RENAME, ShopVersion
from zdmigrate.phases import Phase
from zdmigrate.runtime import Runtime

DUAL = DUAL_WRITING
NEW = "2.0"

_ids = itertools.count(1)


# -- the expected model -------------------------------------------------------------


class Model:
    """The users the database must hold: id -> name, with every committed write."""

    def __init__(self) -> None:
        self._rows: dict[int, str] = {}
        self._lock = threading.Lock()
        self.seed_ids: list[int] = []

    def set(self, row_id: int, value: str) -> None:
        with self._lock:
            self._rows[row_id] = value

    def get(self, row_id: int) -> str | None:
        with self._lock:
            return self._rows.get(row_id)

    def snapshot(self) -> dict[int, str]:
        with self._lock:
            return dict(self._rows)

    def seed(self, dsn: str, rows: int) -> None:
        """Insert `rows` users as the old app wrote them (name only)."""
        with psycopg.connect(dsn, autocommit=True) as conn:
            got = conn.execute(
                "INSERT INTO users (name, email) SELECT 'seed-' || g, 'seed-' || g || '@x' "
                "FROM generate_series(1, %s) g RETURNING id, name", [rows]
            ).fetchall()
        for row_id, name in got:
            self.set(int(row_id), str(name))
            self.seed_ids.append(int(row_id))

    def check(self, dsn: str) -> tuple[int, str]:
        """Assert the table holds exactly the model (count and checksum); returns both.

        From backfill until contract, full_name must also equal name in every row.
        """
        expected = self.snapshot()
        with psycopg.connect(dsn, autocommit=True) as conn:
            column = current_column(conn)
            query = sql.SQL("SELECT id, {} FROM users ORDER BY id").format(sql.Identifier(column))
            actual = {int(r[0]): r[1] for r in conn.execute(query).fetchall()}
            if column == "name" and has_column(conn, "full_name") \
                    and phase_of(dsn) >= Phase.BACKFILL:
                differ = conn.execute(
                    "SELECT count(*) FROM users WHERE full_name IS DISTINCT FROM name").fetchone()
                assert differ == (0,), f"{differ} rows where full_name and name disagree"
        missing = sorted(set(expected) - set(actual))[:10]
        extra = sorted(set(actual) - set(expected))[:10]
        wrong = [(k, expected[k], actual[k]) for k in expected if k in actual
                 and actual[k] != expected[k]][:10]
        assert not missing and not extra and not wrong, (
            f"rows lost {missing}, unexpected rows {extra}, wrong rows {wrong}")
        assert checksum(actual) == checksum(expected)
        return len(actual), checksum(actual)


def checksum(rows: dict[int, str]) -> str:
    digest = hashlib.sha256()
    for key in sorted(rows):
        digest.update(f"{key}:{rows[key]}\n".encode())
    return digest.hexdigest()


def has_column(conn: psycopg.Connection[Any], column: str) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = 'users' AND column_name = %s", [column]).fetchone()
    return bool(row and row[0])


def current_column(conn: psycopg.Connection[Any]) -> str:
    """``name`` while it exists, else ``full_name``: the column holding every row's value."""
    return "name" if has_column(conn, "name") else "full_name"


# -- what each version sends, checked against the model -------------------------------


@dataclass
class Stats:
    """One instance's requests, recorded by the demo's AppInstance (a `RequestRecorder`)."""

    name: str
    requests: int = 0
    #: Requests that raised (anything: a failed request).
    errors: list[str] = field(default_factory=list)
    #: Reads that returned something else than the model holds, and unsettled writes.
    wrong: list[str] = field(default_factory=list)
    #: (monotonic start, seconds) of every request.
    latencies: list[tuple[float, float]] = field(default_factory=list)

    def record(self, version: str, seconds: float, error: BaseException | None = None) -> None:
        self.requests += 1
        self.latencies.append((time.monotonic() - seconds, seconds))
        if error is not None:
            self.errors.append(f"{self.name}: {type(error).__name__}: {error}".strip())


class ModelledShop(ShopVersion):
    """The rename's requests of one shop version; every write goes into the model."""

    def __init__(self, runtime: Runtime | None, version: str, model: Model, stats: Stats) -> None:
        super().__init__(runtime, 1)
        assert runtime is not None
        self.version = version
        self.model = model
        self.stats = stats
        self.name = stats.name
        self.dual = runtime.dual_write(RENAME, {"name": "full_name"})
        self._mine: list[int] = []
        self._seq = itertools.count(1)
        #: A write whose outcome is unknown: ("insert", token) or ("update", id, old, new).
        self._unsettled: tuple[Any, ...] | None = None

    def write_values(self, value: str) -> dict[str, str]:
        if self.version == OLD:
            return {"name": value}
        if self.version == NEW:
            return {"full_name": value}
        return self.dual.write({"name": value})

    def read_column(self) -> str:
        if self.version == OLD:
            return "name"
        if self.version == NEW:
            return "full_name"
        return self.dual.read_column("name")

    def request(self, conn: psycopg.Connection[Any], rng: random.Random) -> str:
        roll = rng.random()
        if roll < 0.35 or not self._mine:
            self._insert(conn)
            return "insert"
        if roll < 0.6:
            self._update(conn, rng.choice(self._mine))
            return "update"
        pool = self._mine if rng.random() < 0.5 or not self.model.seed_ids else \
            self.model.seed_ids
        self._read(conn, rng.choice(pool))
        return "read"

    def _insert(self, conn: psycopg.Connection[Any]) -> None:
        token = f"{self.name}-{next(self._seq)}"
        values = {**self.write_values(token), "email": f"{token}@x"}
        query = sql.SQL("INSERT INTO users ({}) VALUES ({}) RETURNING id").format(
            sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(sql.Placeholder() * len(values)))
        self._unsettled = ("insert", token)
        row = conn.execute(query, list(values.values())).fetchone()
        self._unsettled = None
        assert row is not None
        self.model.set(int(row[0]), token)
        self._mine.append(int(row[0]))

    def _update(self, conn: psycopg.Connection[Any], row_id: int) -> None:
        token = f"{self.name}-{next(self._seq)}"
        values = self.write_values(token)
        query = sql.SQL("UPDATE users SET {} WHERE id = %s").format(sql.SQL(", ").join(
            sql.SQL("{} = %s").format(sql.Identifier(column)) for column in values))
        self._unsettled = ("update", row_id, self.model.get(row_id), token)
        conn.execute(query, [*values.values(), row_id])
        self._unsettled = None
        self.model.set(row_id, token)

    def _read(self, conn: psycopg.Connection[Any], row_id: int) -> None:
        column = self.read_column()
        expected = self.model.get(row_id)
        row = conn.execute(_select_by_id(column), [row_id]).fetchone()
        got = row[0] if row else None
        if got != expected:
            self.stats.wrong.append(f"{self.name} read {column} of id {row_id}: {got!r}, "
                                    f"expected {expected!r}")

    def reconnected(self, conn: psycopg.Connection[Any]) -> None:
        """After a reconnect: did the write in flight when the connection died commit?"""
        if self._unsettled is None:
            return
        unsettled, self._unsettled = self._unsettled, None
        column = current_column(conn)
        if unsettled[0] == "insert":
            token = unsettled[1]
            row = conn.execute(sql.SQL("SELECT id FROM users WHERE {} = %s").format(
                sql.Identifier(column)), [token]).fetchone()
            if row is not None:
                self.model.set(int(row[0]), token)
                self._mine.append(int(row[0]))
            return
        _, row_id, before, after = unsettled
        row = conn.execute(_select_by_id(column), [row_id]).fetchone()
        got = row[0] if row else None
        if got == after:
            self.model.set(row_id, after)
        elif got != before:
            self.stats.wrong.append(f"{self.name}: id {row_id} is {got!r} after an unsettled "
                                    f"update from {before!r} to {after!r}")


def _select_by_id(column: str) -> sql.Composed:
    return sql.SQL("SELECT {} FROM users WHERE id = %s").format(sql.Identifier(column))


# -- a fleet --------------------------------------------------------------------------


class Fleet:
    """The shop instances running now, and those that ran before (for their stats)."""

    def __init__(self, url: str, model: Model, **defaults: Any) -> None:
        self.url = url
        self.model = model
        self.defaults = defaults
        self.live: list[AppInstance] = []
        self.retired: list[AppInstance] = []

    def start(self, version: str, count: int = 1, **options: Any) -> list[AppInstance]:
        """`count` instances of `version`; options: rate (20/s), ttl (30 s), heartbeat_interval."""
        started = [self._instance(version, **{**self.defaults, **options}).start()
                   for _ in range(count)]
        self.live.extend(started)
        return started

    def _instance(self, version: str, *, rate: float = 20.0, ttl: int = 30,
                  heartbeat_interval: float = 1.0) -> AppInstance:
        number = next(_ids)
        stats = Stats(f"{version}-{number}")

        def app(runtime: Runtime | None, _rows: int) -> ModelledShop:
            return ModelledShop(runtime, version, self.model, stats)

        return AppInstance(
            self.url, version, stats.name, stats=stats, rate=rate, seed=number,
            app_class=app,  # type: ignore[arg-type]
            ttl_seconds=ttl, heartbeat_interval=heartbeat_interval, poll_interval=0.2,
            count_connect_failures=False,
        )

    def stop(self, instance: AppInstance, *, vanish: bool = False) -> None:
        instance.vanish() if vanish else instance.stop()
        self.live.remove(instance)
        self.retired.append(instance)

    def stop_all(self) -> None:
        for instance in list(self.live):
            self.stop(instance)

    def of(self, version: str) -> list[AppInstance]:
        return [i for i in self.live if i.version == version]

    def versions(self) -> set[str]:
        return {i.version for i in self.live}

    @property
    def everyone(self) -> list[AppInstance]:
        return self.retired + self.live

    def _stats(self) -> list[Stats]:
        return [i.stats for i in self.everyone]  # type: ignore[misc]

    def requests(self) -> int:
        return sum(s.requests for s in self._stats())

    def errors(self) -> list[str]:
        return [e for s in self._stats() for e in s.errors]

    def wrong(self) -> list[str]:
        return [w for s in self._stats() for w in s.wrong]

    def latencies(self, since: float = 0.0) -> list[float]:
        return [d for s in self._stats() for start, d in s.latencies if start >= since]

    def wait_for_requests(self, count: int, timeout: float = 60.0) -> None:
        """Wait until `count` more requests were sent (so each step sees real traffic).

        Fails the test when they do not come within `timeout`: a step that saw no
        traffic proves nothing.
        """
        before = self.requests()
        goal = before + count
        deadline = time.monotonic() + timeout
        while self.requests() < goal:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout:g}s waiting for {count} more requests from "
                    f"{self.live}: {self.requests() - before} came "
                    f"(rates {[i.current_rate() for i in self.live]})")
            time.sleep(0.05)


@contextmanager
def running_fleet(url: str, model: Model, **defaults: Any) -> Iterator[Fleet]:
    fleet = Fleet(url, model, **defaults)
    try:
        yield fleet
    finally:
        fleet.stop_all()


def kill(process: subprocess.Popen[Any]) -> None:
    """SIGKILL `process` (no cleanup of any kind) and reap it."""
    with suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)


# -- waiting -------------------------------------------------------------------------


def wait_until(predicate: Any, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def scalar(dsn: str, query: str, params: Iterable[Any] | None = None) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(query.encode(), list(params) if params is not None else None).fetchone()
    return row[0] if row else None


def phase_of(dsn: str, migration: str = RENAME) -> Phase:
    try:
        value = scalar(dsn, "SELECT phase FROM zdmigrate.migrations WHERE id = %s", [migration])
    except psycopg.errors.UndefinedTable:
        return Phase.PENDING
    return Phase.parse(value) if value else Phase.PENDING


def slowed_copy(source: Path, target: Path, *, pause: float, backfill_options: str) -> None:
    """A copy of a migration file with a pg_sleep step after each statement, and given
    backfill options, so a kill at a random moment lands inside a phase more often."""
    lines = []
    for line in source.read_text().splitlines():
        lines.append(line)
        stripped = line.strip()
        if stripped.startswith("ctx.execute(") and stripped.endswith(")"):
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(f'{indent}ctx.execute("SELECT pg_sleep({pause})")')
    text = "\n".join(lines) + "\n"
    text = text.replace('where="full_name IS DISTINCT FROM name")',
                        f'where="full_name IS DISTINCT FROM name", {backfill_options})')
    target.write_text(text)



# -- a shop database ready for the rename ----------------------------------------------

RENAME_BY_OPERATION = '''
"""The rename of migrations_example/0002, written with ops.RenameColumn."""
from zdmigrate import ops

revision = "0002_rename_users_name"
down_revision = "0001_create_users"
compat = {"shop": {"dual_write_from": "1.5", "read_new_from": "2.0", "old_unused_from": "2.0"}}
operations = [ops.RenameColumn("users", "name", "full_name")]
'''


def shop_migrations(tmp_path: Path, *, rename: str = "example", pause: float = 0.0,
                    backfill_options: str = "") -> Path:
    """migrations_example up to the rename: the example's own file, a slowed copy of it
    (`pause` > 0), or the same rename written with ops.RenameColumn (`rename="operation"`)."""
    from tests.helpers import EXAMPLE

    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_create_users.py").write_text((EXAMPLE / "0001_create_users.py").read_text())
    source = EXAMPLE / f"{RENAME}.py"
    target = folder / f"{RENAME}.py"
    if rename == "operation":
        target.write_text(RENAME_BY_OPERATION.lstrip())
    elif pause or backfill_options:
        slowed_copy(source, target, pause=pause, backfill_options=backfill_options)
    else:
        target.write_text(source.read_text())
    return folder


def fleet_config(tmp_path: Path, session_ttl: int = 1) -> Path:
    """A pyproject.toml for CLI runs from `tmp_path`: sessions remembered `session_ttl` s."""
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.zdmigrate.fleet]\nsession_ttl = {session_ttl}\n")
    return path


# -- a deploy pipeline ---------------------------------------------------------------


class Pipeline:
    """What a deploy pipeline runs, in-process: gate, phase advance, fleet retire.

    `contract_refused` proves that contract is refused now because an old
    version is live, and that nothing was dropped; before switch-read it asks
    with a dry run (a real advance would walk the earlier phases).
    """

    def __init__(self, settings: Any, dsn: str) -> None:
        self.settings = settings
        self.dsn = dsn
        self.log: list[str] = []

    def gate(self, version: str) -> bool:
        from zdmigrate import gate

        return gate.run_gate(self.settings, app="shop", version=version).allowed

    def advance(self, to: Phase) -> None:
        from zdmigrate import engine

        engine.advance(self.settings, RENAME, to=to, log=self.log.append)
        assert phase_of(self.dsn) is to

    def contract_refused(self, where: str) -> None:
        from zdmigrate import engine, fleet
        from zdmigrate.errors import PhaseRefused

        phase = phase_of(self.dsn)
        try:
            engine.advance(self.settings, RENAME, to=Phase.CONTRACT,
                           dry_run=phase is not Phase.SWITCH_READ)
        except PhaseRefused as refused:
            checks = {b.check for b in refused.blockers}
            assert fleet.CHECK_OLD_VERSION in checks, (where, refused.blockers)
            assert "cannot enter contract" in str(refused), (where, str(refused))
        else:
            raise AssertionError(f"contract was not refused {where}")
        assert phase_of(self.dsn) is phase
        with psycopg.connect(self.dsn) as conn:
            assert has_column(conn, "name"), where

    def contract(self) -> None:
        self.advance(Phase.CONTRACT)
        with psycopg.connect(self.dsn) as conn:
            assert not has_column(conn, "name")

    def retire(self, version: str) -> None:
        """After the deploy tool saw the old version's last instance terminate."""
        from zdmigrate import engine

        wait_until(lambda: not scalar(
            self.dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [f"shop@{version}"]), what=f"shop@{version} sessions to end")
        engine.fleet_retire(self.settings, app="shop", version=version)

    def live_versions(self) -> set[str]:
        from zdmigrate import fleet

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return {i.version for i in fleet.live_instances(conn, self.settings.state_schema,
                                                            remember_sessions=False)}
