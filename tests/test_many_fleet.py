"""Fleet and gate across targets, on 8 real databases: an old instance seen on one shard
only holds contract on every shard; the gate answers for the whole set; a target that
cannot be read fails closed (exit 3, naming it)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.fix_cli import Cli
from tests.fix_db import Server
from tests.fleet_helpers import columns, phase_of, write_migrations
from zdmigrate import engine, fleet
from zdmigrate.config import Settings
from zdmigrate.errors import PhaseRefused, TargetsFailed

RENAME = "0002_rename"
SHARDS = 8


@dataclass(frozen=True)
class Shard:
    name: str
    url: str

    @property
    def dsn(self) -> str:
        return self.url  # libpq takes the URL as it is


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    return write_migrations(tmp_path / "migrations")


def configure(tmp_path: Path, shards: list[Shard]) -> None:
    """The targets in the pyproject.toml the CLI (run in tmp_path) reads."""
    lines = [f'{s.name} = "{s.url}"' for s in shards]
    (tmp_path / "pyproject.toml").write_text(
        "[tool.zdmigrate.targets]\n" + "\n".join(lines) + "\n")


@pytest.fixture
def shards(fresh_databases: Callable[[int], list[str]], pg_server: Server, tmp_path: Path,
           migrations_dir: Path) -> list[Shard]:
    """8 shards, each with 0001_users complete and 0002_rename at switch-read,
    configured as targets."""
    found = [Shard(f"shard-{n:02}", pg_server.url_for(name))
             for n, name in enumerate(fresh_databases(SHARDS), start=1)]

    def prepare(shard: Shard) -> None:
        settings = Settings.load({"database_url": shard.url, "migrations": migrations_dir},
                                 environ={})
        engine.advance(settings, "0001_users", to="contract")
        engine.advance(settings, RENAME, to="switch-read")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(prepare, found))
    configure(tmp_path, found)
    return found


def beat(shard: Shard, instance: str, version: str) -> None:
    with psycopg.connect(shard.dsn, autocommit=True) as conn:
        fleet.heartbeat(conn, "zdmigrate", app="shop", version=version, instance_id=instance,
                        ttl=600)


def stop(shard: Shard, instance: str) -> None:
    with psycopg.connect(shard.dsn, autocommit=True) as conn:
        assert fleet.stop_heartbeat(conn, "zdmigrate", app="shop", instance_id=instance)


def test_an_old_instance_on_one_shard_holds_contract_on_every_shard(
    cli: Cli, shards: list[Shard]
) -> None:
    for shard in shards:  # the new version runs against every shard
        beat(shard, "web-2", "2.0")
    beat(shards[4], "web-1", "1.9")  # an old one, seen on shard-05 only

    code, listed = cli.json("fleet")
    assert code == 0, listed
    where = {i["instance_id"]: i["targets"] for i in listed["instances"]}
    assert where == {"web-1": ["shard-05"], "web-2": [s.name for s in shards]}

    code, refused = cli.json("phase", "advance", RENAME)
    assert code == 1, refused  # a check said no (DESIGN.md), on every target
    text = str(refused)
    assert "fleet-old-version" in text and "web-1" in text and "shard-05" in text
    for shard in shards:
        assert phase_of(shard.dsn, RENAME) == "switch-read"
        assert "name" in columns(shard.dsn)

    stop(shards[4], "web-1")  # it stops cleanly: nothing old runs anywhere
    code, out, err = cli("phase", "advance", RENAME)
    assert code == 0, out + err
    for shard in shards:
        assert phase_of(shard.dsn, RENAME) == "contract"
        assert "name" not in columns(shard.dsn)


def test_the_check_of_one_shard_sees_the_old_instance_of_another(
    shards: list[Shard], migrations_dir: Path
) -> None:
    """The engine's door, as the advance across targets uses it: one shared read."""
    beat(shards[2], "web-1", "1.9")
    for shard in shards:
        beat(shard, "web-2", "2.0")
    base = Settings.load({"migrations": migrations_dir}, environ={})
    shared = fleet.SharedFleet(shards, base, parallel=4, max_age=600)
    for shard in (shards[0], shards[7]):  # neither sees web-1 itself
        with pytest.raises(PhaseRefused) as caught:
            engine.advance(base.with_(database_url=shard.url), RENAME, fleet_instances=shared)
        [blocker] = caught.value.blockers
        assert blocker.check == "fleet-old-version"
        assert blocker.details["instance_id"] == "web-1"
        assert blocker.details["targets"] == ["shard-03"]
        assert "instance web-1 on shard-03" in blocker.message
    assert shared.reads == 1  # read once for both checks, not once per shard
    # without the set, shard-01 alone would have let contract through
    assert not engine.status(base.with_(database_url=shards[0].url))[1].blocked_by


def test_gate_across_targets_answers_for_the_whole_set(
    cli: Cli, shards: list[Shard], migrations_dir: Path
) -> None:
    for shard in shards:
        beat(shard, "web-2", "2.0")
    code, answer = cli.json("gate", "--app", "shop", "--version", "2.0")
    assert code == 0, answer
    assert answer["allowed"] is True
    assert [t["name"] for t in answer["targets"]] == [s.name for s in shards]
    assert {t["phases"][RENAME] for t in answer["targets"]} == {"switch-read"}
    assert any(f"{RENAME} at switch-read on all {SHARDS} targets" in c for c in answer["checked"])

    # one shard goes back to backfill: shop 2.0 reads the new shape, not ready there
    base = Settings.load({"migrations": migrations_dir}, environ={})
    engine.rollback(base.with_(database_url=shards[2].url), RENAME, to="backfill")
    code, answer = cli.json("gate", "--app", "shop", "--version", "2.0")
    assert code == 1, answer
    [reason] = answer["reasons"]
    assert reason["check"] == "gate-read-new-too-early"
    assert reason["targets"] == ["shard-03"]
    assert reason["message"].startswith("on target shard-03: ")

    # 1.4 does not dual-write: refused on every shard, one reason per phase it is at
    code, answer = cli.json("gate", "--app", "shop", "--version", "1.4")
    assert code == 1
    by_phase = {r["phase"]: r["targets"] for r in answer["reasons"]
                if r["check"] == "gate-dual-write-needed"}
    assert by_phase == {"switch-read": [s.name for s in shards if s.name != "shard-03"],
                        "backfill": ["shard-03"]}

    code, out, _ = cli("gate", "--app", "shop", "--version", "2.0")
    assert code == 1 and "on target shard-03:" in out


def test_a_target_that_cannot_be_read_fails_closed(
    cli: Cli, shards: list[Shard], tmp_path: Path, pg_server: object
) -> None:
    gone = Shard("shard-09", shards[0].url.rsplit("/", 1)[0] + "/zdm_no_such_database")
    configure(tmp_path, [*shards, gone])
    for args in (("fleet",), ("gate", "--app", "shop", "--version", "2.0")):
        code, data = cli.json(*args)
        assert code == 3, (args, data)
        assert list(data["error"]["targets"]) == ["shard-09"], data
        assert "shard-09" in data["error"]["message"]
    with pytest.raises(TargetsFailed) as caught:
        fleet.fleet_across([*shards, gone], Settings.load({}, environ={}))
    assert set(caught.value.failures) == {"shard-09"} and caught.value.exit_code == 3
