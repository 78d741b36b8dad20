"""search_paths: which version schemas each app version needs; `status` shows it."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.ops_lifecycle import Lifecycle
from zdmigrate import cli, engine
from zdmigrate.engine import search_paths
from zdmigrate.migration import load_migrations
from zdmigrate.phases import Phase

FILE = '''from zdmigrate import ops
revision = "{rev}"
down_revision = {down!r}
operations = [{op}]
compat = {{"shop": {{"read_new_from": "{first}", "old_unused_from": "{first}"}}}}
'''


def test_stacks_in_flight_view_migrations_newest_first(tmp_path: Path) -> None:
    for rev, down, op, first in [
        ("0001_a", None, 'ops.RenameColumn("users", "name", "full_name", mode="view")', "2.0"),
        ("0002_b", "0001_a", 'ops.RenameColumn("users", "email", "mail")', "2.0"),
        ("0003_c", "0002_b", 'ops.RenameTable("orders", "purchases", mode="view")', "2.1"),
        ("0004_d", "0003_c", 'ops.RenameColumn("items", "sku", "code", mode="view")', "2.0"),
    ]:
        (tmp_path / f"{rev}.py").write_text(FILE.format(rev=rev, down=down, op=op, first=first))
    migrations = load_migrations(tmp_path)
    phases = {"0001_a": Phase.SWITCH_READ, "0002_b": Phase.EXPAND, "0003_c": Phase.EXPAND}
    phase_of = lambda m: phases.get(m, Phase.PENDING)  # noqa: E731
    paths = search_paths.for_versions(migrations, phase_of,
                                      [("shop", "1.9"), ("shop", "2.0"), ("shop", "2.1.3"),
                                       ("admin", "9.0"), ("shop", "2.0")])
    # 0002 copies (no schema); 0004 is pending (no schema yet)
    assert paths == {("shop", "2.0"): ["zdm_0001_a"],
                     ("shop", "2.1.3"): ["zdm_0003_c", "zdm_0001_a"]}
    phases["0001_a"] = Phase.CONTRACT
    assert search_paths.search_path(migrations, phase_of, "shop", "2.1") == ["zdm_0003_c"]
    assert search_paths.dsn_option(["zdm_0003_c"]) == "-csearch_path=zdm_0003_c,public"
    assert search_paths.dsn_option(["zdm_0004_Big"]) == '-csearch_path="zdm_0004_Big",public'


def test_status_shows_the_search_path_of_each_live_version(
        tmp_path: Path, db_url: str, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigserial PRIMARY KEY, name text)")
    lc = Lifecycle(tmp_path / "migrations", db_url,
                   '[ops.RenameColumn("users", "name", "full_name", mode="view")]\n'
                   'compat = {"shop": {"read_new_from": "2.0", "old_unused_from": "2.0"}}')
    assert engine.status(lc.settings)[0].version_schema is None  # pending: no schema yet
    lc.advance(Phase.EXPAND)
    for version in ("1.9", "2.0"):
        engine.fleet_declare(lc.settings, app="shop", version=version)
    (only,) = engine.status(lc.settings)
    vs = "zdm_0001_op_under_test"
    assert only.version_schema == {
        "schema": vs, "read_new_from": {"shop": "2.0"},
        "live": [{"app": "shop", "version": "2.0", "search_path": [vs],
                  "dsn_option": f"-csearch_path={vs},public"}]}
    args = ["--database-url", db_url, "--migrations", str(lc.directory)]
    assert cli.run([*args, "status"]) == 0
    out = capsys.readouterr().out
    assert f"  shop 2.0: options=-csearch_path={vs},public" in out
    assert "shop 1.9" not in out
    assert cli.run([*args, "status", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["migrations"][0]["version_schema"]["live"][0]["version"] == "2.0"
