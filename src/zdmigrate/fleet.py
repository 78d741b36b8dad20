"""Which app versions are live (heartbeats, declarations, sessions), and the compat checks on them.

Three sources feed one list of instances:

- ``heartbeat``: a row per app instance, written by `zdmigrate.runtime` or by
  ``zdmigrate fleet heartbeat``, refreshed before its TTL runs out;
- ``declared``: rows a deploy system writes with ``zdmigrate fleet declare`` and
  removes with ``zdmigrate fleet retire``;
- ``session``: connections to this database whose ``application_name`` is
  ``app@version`` (pattern configurable). Any role sees other sessions'
  application_name; their client address needs ``pg_read_all_stats``. Each
  session seen is remembered for `session_ttl` seconds, so an app whose pool is
  empty for a moment still counts.

An instance is live until ``last_seen + ttl``, measured on the database's clock:
one that vanished without a word still counts until then. The checks fail safe:
an unparseable version is treated as too old, and an app the migration's
`compat` names with no instance at all is "not proven" before contract.

Warning: the functions take a psycopg connection and run in the caller's
transaction (or in autocommit); writes that may be refused (a read-only role)
run in a savepoint so the caller's transaction survives.
"""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from packaging.version import Version
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from zdmigrate.compat import AppCompat, parse_version
from zdmigrate.config import Settings, parse_duration
from zdmigrate.errors import Blocker, ConfigError
from zdmigrate.phases import Phase
from zdmigrate.steps import REMOVES_OLD_DEPENDENCY, SQLStep, Step

if TYPE_CHECKING:
    from zdmigrate.migration import Migration

SOURCES = ("heartbeat", "declared", "session")

#: Blocker check ids raised here.
CHECK_DUAL_WRITE = "fleet-dual-write"
CHECK_OLD_VERSION = "fleet-old-version"
CHECK_NOT_PROVEN = "fleet-not-proven"
FLEET_CHECKS = frozenset({CHECK_DUAL_WRITE, CHECK_OLD_VERSION, CHECK_NOT_PROVEN})

DEFAULT_APPLICATION_NAME_PATTERN = r"^(?P<app>[A-Za-z0-9_.\-]+)@(?P<version>[^\s@]+)$"

_SESSION_SCHEMA_VERSION = 3  # state.SCHEMA_VERSIONS entry that allows source='session'


@dataclass(frozen=True)
class FleetSettings:
    """``[tool.zdmigrate.fleet]``: how sessions are recognised and default TTLs.

        [tool.zdmigrate.fleet]
        application_name_pattern = '^(?P<app>[a-z-]+)/(?P<version>.+)$'
        session_ttl = "5min"
    """

    #: Regex with named groups ``app`` and ``version``, matched against application_name.
    application_name_pattern: str = DEFAULT_APPLICATION_NAME_PATTERN
    #: How long a session seen in pg_stat_activity still counts after it is gone, seconds.
    session_ttl: int = 300
    #: Default TTL of `fleet heartbeat`, seconds.
    heartbeat_ttl: int = 60
    #: Default TTL of `fleet declare`, seconds.
    declare_ttl: int = 86400

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.application_name_pattern)

    @classmethod
    def from_settings(cls, settings: Settings) -> FleetSettings:
        raw = settings.extra.get("fleet", {})
        if not isinstance(raw, Mapping):
            raise ConfigError("[tool.zdmigrate.fleet] must be a table")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            name = str(key).replace("-", "_")
            if name == "application_name_pattern":
                values[name] = _valid_pattern(value)
            elif name in ("session_ttl", "heartbeat_ttl", "declare_ttl"):
                values[name] = ttl_seconds(value, f"fleet.{name}")
            else:
                raise ConfigError(
                    f"[tool.zdmigrate.fleet] has an unknown key {key!r}",
                    hint="known keys: application_name_pattern, session_ttl, heartbeat_ttl, "
                    "declare_ttl",
                )
        return cls(**values)


def _valid_pattern(value: object) -> str:
    try:
        compiled = re.compile(str(value))
    except re.error as exc:
        raise ConfigError(f"fleet.application_name_pattern {value!r} is not a regex: {exc}") from None
    missing = {"app", "version"} - set(compiled.groupindex)
    if missing:
        raise ConfigError(
            f"fleet.application_name_pattern {value!r} lacks the named group(s) "
            + ", ".join(sorted(missing)),
            hint="e.g. '^(?P<app>[a-z-]+)@(?P<version>.+)$'",
        )
    return str(value)


def ttl_seconds(value: object, name: str = "ttl") -> int:
    """Whole seconds (at least 1) from a number or a duration string such as ``"5min"``."""
    seconds = parse_duration(value, name)
    if seconds <= 0:
        raise ConfigError(f"{name}: {value!r} must be more than 0 seconds")
    return max(1, math.ceil(seconds))


@dataclass(frozen=True)
class Instance:
    """One live app instance, from one source."""

    app: str
    instance_id: str
    version: str
    source: str
    last_seen: datetime
    expires_at: datetime
    ttl_seconds: int
    started_at: datetime | None = None
    host: str | None = None
    pid: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def parsed_version(self) -> Version | None:
        return parse_version(self.version)

    def describe(self) -> str:
        """``shop 1.4 (instance web-1, source heartbeat, last seen ..., counts until ...)``."""
        return (
            f"{self.app} {self.version} (instance {self.instance_id}, source {self.source}, "
            f"last seen {_ts(self.last_seen)}, counts until {_ts(self.expires_at)})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "version": self.version,
            "instance_id": self.instance_id,
            "source": self.source,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "last_seen": self.last_seen.isoformat(),
            "ttl_seconds": self.ttl_seconds,
            "expires_at": self.expires_at.isoformat(),
            "info": dict(self.info),
        }


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S%z")


def render_table(instances: Sequence[Instance]) -> str:
    """The instances as an aligned text table (what `zdmigrate fleet` prints)."""
    if not instances:
        return "no live instances (no heartbeats, app@version sessions or declarations)"
    header = ("APP", "VERSION", "SOURCE", "INSTANCE", "LAST SEEN", "COUNTS UNTIL")
    rows = [
        (i.app, i.version, i.source, i.instance_id, _ts(i.last_seen), _ts(i.expires_at))
        for i in instances
    ]
    widths = [max(len(r[n]) for r in (header, *rows)) for n in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )


# -- reading ---------------------------------------------------------------------


def live_instances(
    conn: psycopg.Connection[Any],
    schema: str,
    fleet_settings: FleetSettings | None = None,
    *,
    app: str | None = None,
    remember_sessions: bool = True,
) -> list[Instance]:
    """Every live instance from the three sources, sorted by app, version, source, id.

    Sessions seen now are also remembered (source ``session``, TTL
    `session_ttl`) when the state schema is in place and the role may write it;
    otherwise they are only counted while connected.
    """
    fleet_settings = fleet_settings or FleetSettings()
    sessions = session_instances(conn, fleet_settings)
    exists, sessions_allowed = _instances_table(conn, schema)
    if remember_sessions and sessions and sessions_allowed:
        _remember(conn, schema, sessions)
    stored = stored_instances(conn, schema) if exists else []
    seen = {(i.app, i.instance_id) for i in stored}
    merged = stored + [s for s in sessions if (s.app, s.instance_id) not in seen]
    if app is not None:
        merged = [i for i in merged if i.app == app]
    return sorted(merged, key=lambda i: (i.app, _version_key(i), i.source, i.instance_id))


def _version_key(instance: Instance) -> tuple[int, Version | str]:
    parsed = instance.parsed_version
    return (1, parsed) if parsed is not None else (0, instance.version)  # type: ignore[return-value]


def session_instances(
    conn: psycopg.Connection[Any], fleet_settings: FleetSettings | None = None
) -> list[Instance]:
    """Connections to this database whose application_name matches the pattern.

    Grouped by app, version and client host (a pool of 20 connections is one
    instance, with ``info["connections"] = 20``). Without pg_read_all_stats the
    client host of other roles' sessions is hidden, so they group as ``unknown``.
    """
    pattern = (fleet_settings or FleetSettings()).pattern
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """SELECT application_name,
                      coalesce(client_hostname, host(client_addr),
                               CASE WHEN client_port = -1 THEN 'local' END) AS host,
                      count(*) AS connections,
                      min(backend_start) AS started_at,
                      array_agg(pid ORDER BY pid) AS pids,
                      now() AS now,
                      now() + make_interval(secs => %s) AS expires_at
                 FROM pg_stat_activity
                WHERE datname = current_database()
                  AND pid <> pg_backend_pid()
                  AND application_name <> ''
                GROUP BY 1, 2""",
            [(fleet_settings or FleetSettings()).session_ttl],
        )
        rows = cur.fetchall()
    ttl = (fleet_settings or FleetSettings()).session_ttl
    out: list[Instance] = []
    for row in rows:
        match = pattern.match(row["application_name"])
        if not match:
            continue
        app, version = match.group("app"), match.group("version")
        host = row["host"] or "unknown"
        out.append(
            Instance(
                app=app,
                instance_id=f"session:{host}:{version}",
                version=version,
                source="session",
                last_seen=row["now"],
                expires_at=row["expires_at"],
                ttl_seconds=ttl,
                started_at=row["started_at"],
                host=row["host"],
                pid=row["pids"][0] if len(row["pids"]) == 1 else None,
                info={"connections": int(row["connections"]), "pids": list(row["pids"]),
                      "application_name": row["application_name"]},
            )
        )
    return out


def stored_instances(conn: psycopg.Connection[Any], schema: str) -> list[Instance]:
    """Rows of ``instances`` whose TTL has not run out (database clock)."""
    if not _instances_table(conn, schema)[0]:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                """SELECT app, instance_id, version, host, pid, source, started_at, last_seen,
                          ttl_seconds, info,
                          last_seen + make_interval(secs => ttl_seconds) AS expires_at
                     FROM {}
                    WHERE last_seen + make_interval(secs => ttl_seconds) > now()"""
            ).format(sql.Identifier(schema, "instances"))
        )
        rows = cur.fetchall()
    return [_instance(row) for row in rows]


def _instance(row: Mapping[str, Any]) -> Instance:
    return Instance(
        app=row["app"],
        instance_id=row["instance_id"],
        version=row["version"],
        source=row["source"],
        last_seen=row["last_seen"],
        expires_at=row["expires_at"],
        ttl_seconds=int(row["ttl_seconds"]),
        started_at=row["started_at"],
        host=row["host"],
        pid=row["pid"],
        info=row["info"] or {},
    )


def _instances_table(conn: psycopg.Connection[Any], schema: str) -> tuple[bool, bool]:
    """(the instances table exists, it may hold source='session' rows: schema version 3)."""
    row = conn.execute(
        "SELECT to_regclass(format('%%I.instances', %s::text)) IS NOT NULL, "
        "to_regclass(format('%%I.schema_version', %s::text)) IS NOT NULL",
        [schema, schema],
    ).fetchone()
    if not row or not row[0]:
        return False, False
    if not row[1]:
        return True, False
    found = conn.execute(
        sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE version = %s)").format(
            sql.Identifier(schema, "schema_version")
        ),
        [_SESSION_SCHEMA_VERSION],
    ).fetchone()
    return True, bool(found and found[0])


def _remember(conn: psycopg.Connection[Any], schema: str, sessions: Sequence[Instance]) -> None:
    query = sql.SQL(
        """INSERT INTO {} AS i (app, instance_id, version, host, source, ttl_seconds, info)
           VALUES (%s, %s, %s, %s, 'session', %s, %s)
           ON CONFLICT (app, instance_id) DO UPDATE
              SET last_seen = now(), ttl_seconds = excluded.ttl_seconds, info = excluded.info,
                  version = excluded.version, source = 'session'
            WHERE i.source = 'session'"""
    ).format(sql.Identifier(schema, "instances"))
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                query,
                [
                    [s.app, s.instance_id, s.version, s.host, s.ttl_seconds, Jsonb(dict(s.info))]
                    for s in sessions
                ],
            )
    except (pg_errors.InsufficientPrivilege, pg_errors.ReadOnlySqlTransaction):
        pass  # a read-only role still sees the sessions that are connected now


# -- writing ---------------------------------------------------------------------


def heartbeat(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    app: str,
    version: str,
    instance_id: str | None = None,
    ttl: int = 60,
    host: str | None = None,
    pid: int | None = None,
    info: Mapping[str, Any] | None = None,
) -> Instance:
    """Say that `instance_id` of `app` runs `version`, for the next `ttl` seconds.

    The default instance id is this machine's host name (one sidecar per host
    or pod). `started_at` is kept while the version stays the same.
    """
    host = host or socket.gethostname()
    instance_id = instance_id or host
    row = _upsert(
        conn, schema, app=app, instance_id=instance_id, version=version, source="heartbeat",
        ttl=ttl, host=host, pid=pid, info=info or {},
    )
    return row


def stop_heartbeat(
    conn: psycopg.Connection[Any], schema: str, *, app: str, instance_id: str | None = None
) -> bool:
    """Remove an instance's heartbeat row at once (clean stop); True if there was one."""
    instance_id = instance_id or socket.gethostname()
    cur = conn.execute(
        sql.SQL("DELETE FROM {} WHERE app = %s AND instance_id = %s AND source = 'heartbeat'").format(
            sql.Identifier(schema, "instances")
        ),
        [app, instance_id],
    )
    return cur.rowcount > 0


def declare(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    app: str,
    version: str,
    instances: int = 1,
    ttl: int = 86400,
) -> list[Instance]:
    """Declare that `instances` instances of `app` `version` run, for `ttl` seconds.

    Declaring again refreshes the rows and scales them to the new count. The
    rows are named ``declared:VERSION#N``. Other versions are left alone: retire
    them with `retire` once the deploy has replaced them.
    """
    if instances < 1:
        from zdmigrate.errors import BadInput

        raise BadInput(f"--instances must be at least 1, not {instances}",
                       hint="use `zdmigrate fleet retire` to say a version is gone")
    ids = [f"declared:{version}#{n}" for n in range(1, instances + 1)]
    with conn.transaction():
        out = [
            _upsert(conn, schema, app=app, instance_id=i, version=version, source="declared",
                    ttl=ttl, host=None, pid=None, info={"declared_instances": instances})
            for i in ids
        ]
        conn.execute(
            sql.SQL(
                "DELETE FROM {} WHERE app = %s AND version = %s AND source = 'declared' "
                "AND NOT (instance_id = ANY(%s))"
            ).format(sql.Identifier(schema, "instances")),
            [app, version, ids],
        )
    return out


def retire(conn: psycopg.Connection[Any], schema: str, *, app: str, version: str) -> int:
    """Say that `version` of `app` no longer runs: remove its declared and remembered rows.

    Heartbeat rows are left alone: a running instance would write them again,
    and one that died drops out when its TTL runs out. Returns the rows removed.
    """
    cur = conn.execute(
        sql.SQL(
            "DELETE FROM {} WHERE app = %s AND version = %s AND source IN ('declared', 'session')"
        ).format(sql.Identifier(schema, "instances")),
        [app, version],
    )
    return cur.rowcount


def _upsert(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    app: str,
    instance_id: str,
    version: str,
    source: str,
    ttl: int,
    host: str | None,
    pid: int | None,
    info: Mapping[str, Any],
) -> Instance:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                """INSERT INTO {} AS i (app, instance_id, version, host, pid, source,
                                        ttl_seconds, info)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (app, instance_id) DO UPDATE
                      SET version = excluded.version, host = excluded.host,
                          pid = excluded.pid, source = excluded.source,
                          ttl_seconds = excluded.ttl_seconds, info = excluded.info,
                          last_seen = now(),
                          started_at = CASE WHEN i.version = excluded.version
                                             AND i.source = excluded.source
                                            THEN i.started_at ELSE now() END
                   RETURNING app, instance_id, version, host, pid, source, started_at,
                             last_seen, ttl_seconds, info,
                             last_seen + make_interval(secs => ttl_seconds) AS expires_at"""
            ).format(sql.Identifier(schema, "instances")),
            [app, instance_id, version, host, pid, source, ttl, Jsonb(dict(info))],
        )
        row = cur.fetchone()
    assert row is not None
    return _instance(row)


# -- compat checks ---------------------------------------------------------------


def needs_app_dual_writes(
    steps_by_phase: Mapping[Phase, Iterable[Step]], operations: Iterable[object] = ()
) -> bool:
    """False when database-side sync triggers keep both shapes in step.

    That is when the expand or dual-write phase creates a trigger, or an
    operation says it installs sync triggers (``sync_triggers = True``).
    """
    if any(getattr(op, "sync_triggers", False) for op in operations):
        return False
    for phase in (Phase.EXPAND, Phase.DUAL_WRITE):
        for step in steps_by_phase.get(phase, ()):
            if isinstance(step, SQLStep) and _CREATE_TRIGGER.search(step.sql):
                return False
    return True


def migration_needs_app_dual_writes(migration: Migration) -> bool:
    """`needs_app_dual_writes` for a loaded migration (renders its phases offline)."""
    return needs_app_dual_writes(
        {phase: migration.render(phase) for phase in (Phase.EXPAND, Phase.DUAL_WRITE)},
        migration.operations,
    )


def check_migration(
    conn: psycopg.Connection[Any], settings: Settings, migration: Migration, target: Phase
) -> list[Blocker]:
    """The fleet's blockers for `migration` entering `target` (engine phase check).

    Only backfill and contract have fleet rules. A migration without `compat`
    has none at backfill; at contract it is refused as "not proven" when its
    contract is destructive (drops or renames what old app versions may use),
    since nothing says which versions are old.
    """
    if target is Phase.CONTRACT and not migration.compat:
        return _undeclared_contract(migration)
    if target not in (Phase.BACKFILL, Phase.CONTRACT) or not migration.compat:
        return []
    instances = live_instances(conn, settings.state_schema, FleetSettings.from_settings(settings))
    return phase_blockers(
        instances,
        migration_id=migration.id,
        compat=migration.compat,
        target=target,
        app_dual_writes_needed=(
            target is not Phase.BACKFILL or migration_needs_app_dual_writes(migration)
        ),
    )


_CREATE_TRIGGER = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\b", re.I)


def phase_blockers(
    instances: Sequence[Instance],
    *,
    migration_id: str,
    compat: Mapping[str, AppCompat],
    target: Phase,
    app_dual_writes_needed: bool = True,
) -> list[Blocker]:
    """Why the fleet forbids entering `target`; one blocker per offending instance.

    - backfill: every live instance of each app at or above ``dual_write_from``
      (skipped when sync triggers do the dual write);
    - contract: every live instance at or above ``old_unused_from`` (or the
      highest threshold given), and at least one instance known per app: with no
      data at all the answer is "not proven".
    """
    blockers: list[Blocker] = []
    for app, rules in sorted(compat.items()):
        mine = [i for i in instances if i.app == app]
        if target is Phase.BACKFILL and app_dual_writes_needed and rules.dual_write_from:
            blockers += [
                _too_old(i, migration_id, "dual_write_from", rules.dual_write_from, CHECK_DUAL_WRITE)
                for i in mine
                if _below(i, rules.dual_write_from)
            ]
        if target is Phase.CONTRACT:
            threshold = rules.old_shape_until
            if threshold is None:
                continue
            key, version = threshold
            if not mine:
                blockers.append(_not_proven(app, migration_id, key, version))
            blockers += [
                _too_old(i, migration_id, key, version, CHECK_OLD_VERSION)
                for i in mine
                if _below(i, version)
            ]
    return blockers


def _below(instance: Instance, threshold: Version) -> bool:
    parsed = instance.parsed_version
    return parsed is None or parsed < threshold  # unparseable: fail safe


def _too_old(
    instance: Instance, migration_id: str, key: str, threshold: Version, check: str
) -> Blocker:
    parsed = instance.parsed_version
    why = (
        f"is not a PEP 440 version, so it cannot be shown to be at or above {key} {threshold}"
        if parsed is None
        else f"is below {key} {threshold}"
    )
    return Blocker(
        check,
        f"{migration_id}: {instance.describe()} {why}; {_unblock(instance, threshold)}",
        {
            "migration": migration_id,
            "app": instance.app,
            "version": instance.version,
            "instance_id": instance.instance_id,
            "source": instance.source,
            "last_seen": instance.last_seen.isoformat(),
            "expires_at": instance.expires_at.isoformat(),
            "required": f"{key} {threshold}",
            "unblock": _unblock(instance, threshold),
        },
    )


def _unblock(instance: Instance, threshold: Version) -> str:
    app, version = instance.app, instance.version
    if instance.source == "declared":
        return (
            f"deploy {app} >= {threshold}, then `zdmigrate fleet retire --app {app} "
            f"--version {version}`"
        )
    if instance.source == "session":
        return (
            f"upgrade {app} to >= {threshold} and close the connections with application_name "
            f"{instance.info.get('application_name', f'{app}@{version}')}; once gone they "
            f"still count until {_ts(instance.expires_at)}, or `zdmigrate fleet retire --app "
            f"{app} --version {version}`"
        )
    return (
        f"upgrade or stop that instance ({app} >= {threshold}); a stopped instance drops out "
        f"when it stops cleanly, or when its heartbeat TTL runs out at {_ts(instance.expires_at)}"
    )


def destructive_contract_statements(migration: Migration) -> list[str]:
    """The statements of `migration`'s contract that the linter calls destructive.

    Judged with the linter's default rules, whatever the project's lint config
    disables: whether proof is needed does not depend on which warnings a team
    turned off.

    A step marked `REMOVES_OLD_DEPENDENCY` (a sync or fix trigger dropped) counts
    whatever its SQL; one marked `SCAFFOLDING` (zdmigrate's own helpers) never does.
    Suppression comments in the file are not read here either.
    """
    from zdmigrate.lint import Category, get_rule, lint_steps

    steps = migration.render(Phase.CONTRACT)
    removes = [s.sql for s in steps if isinstance(s, SQLStep) and s.role == REMOVES_OLD_DEPENDENCY]
    unmarked = [replace(s, source=None) for s in steps
                if not (isinstance(s, SQLStep) and s.role is not None)]
    violations = lint_steps(unmarked, Phase.EXPAND, config={})
    return removes + [v.statement for v in violations
                      if get_rule(v.rule).category is Category.DESTRUCTIVE]


def _undeclared_contract(migration: Migration) -> list[Blocker]:
    destructive = destructive_contract_statements(migration)
    if not destructive:
        return []
    first = " ".join(destructive[0].split())
    return [Blocker(
        CHECK_NOT_PROVEN,
        f"{migration.id}: its contract is destructive ({first[:80]}"
        f"{'...' if len(first) > 80 else ''}) but it declares no compat, so it is not proven "
        "that no app version still using the old shape is running; declare "
        "compat = {APP: {\"old_unused_from\": VERSION}} in the migration, or pass "
        "--override-fleet-check --reason '...'",
        {"migration": migration.id, "statements": len(destructive)},
    )]


def _not_proven(app: str, migration_id: str, key: str, threshold: Version) -> Blocker:
    return Blocker(
        CHECK_NOT_PROVEN,
        f"{migration_id}: no fleet data for app {app!r}: it is not proven that no {app} "
        f"version below {key} {threshold} is running; report the live versions (heartbeats "
        f"from zdmigrate.runtime or `zdmigrate fleet heartbeat`, application_name "
        f"'{app}@VERSION' in its connection string, or `zdmigrate fleet declare --app {app} "
        f"--version VERSION`), or pass --override-fleet-check --reason '...'",
        {
            "migration": migration_id,
            "app": app,
            "required": f"{key} {threshold}",
            "unblock": "report live versions of the app, or override with a reason",
        },
    )
