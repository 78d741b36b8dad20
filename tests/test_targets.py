"""Targets: loading them from every source, selecting by name or glob, refusing bad config (exit 2).

No password of a target URL is ever printed, in text or JSON, in a listing or an error.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import psycopg
import pytest

from tests.fix_cli import Cli
from zdmigrate.config import Settings
from zdmigrate.errors import ConfigError, DatabaseUnreachable
from zdmigrate.targets import Target, load_targets, parse_lines, scrub_urls, select

SECRET = "s3cr3t"


def settings(tmp_path: Path, pyproject: str = "", **flags: object) -> Settings:
    path = tmp_path / "pyproject.toml"
    path.write_text(pyproject)
    return Settings.load(flags, environ={}, pyproject=path)


TABLE = f"""
[tool.zdmigrate.targets]
shard-01 = "postgresql://app:{SECRET}@db1/shop"
shard-02 = "postgresql://app@db2/shop"
tenant-acme = "service=tenant-acme"
"""


def test_no_targets_configured_is_one_database(tmp_path: Path) -> None:
    assert load_targets(settings(tmp_path, database_url="postgresql://app@db/shop")) == []


def test_selectors_without_targets_are_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no targets are configured"):
        load_targets(settings(tmp_path), ["shard-*"])


def test_the_pyproject_table_in_its_order(tmp_path: Path) -> None:
    found = load_targets(settings(tmp_path, TABLE))
    assert [t.name for t in found] == ["shard-01", "shard-02", "tenant-acme"]
    assert found[0].url == f"postgresql://app:{SECRET}@db1/shop"
    assert found[0].shown == "postgresql://app:***@db1/shop"
    assert SECRET not in repr(found[0])
    assert found[0].source.endswith("[tool.zdmigrate.targets] shard-01")
    assert found[2].settings(Settings()).database_url == "service=tenant-acme"


def test_a_file_with_comments_relative_to_the_pyproject(tmp_path: Path) -> None:
    (tmp_path / "targets.txt").write_text(
        "# the EU cell\n\nshard-01 postgresql://app@db1/shop  # first\n"
        "  shard-02   host=db2 dbname=shop user=app\n")
    found = load_targets(settings(tmp_path, '[tool.zdmigrate]\ntargets_file = "targets.txt"\n'))
    assert [(t.name, t.url) for t in found] == [
        ("shard-01", "postgresql://app@db1/shop"),
        ("shard-02", "host=db2 dbname=shop user=app"),
    ]
    assert found[1].source == f"{tmp_path / 'targets.txt'}:4"


def test_a_command_that_prints_the_targets(tmp_path: Path) -> None:
    script = tmp_path / "list.py"
    script.write_text("for i in range(1, 4):\n    print(f'shard-{i:02} postgresql://app@db{i}/shop')\n")
    found = load_targets(settings(tmp_path, targets_command=f"{sys.executable} {script}"))
    assert [t.name for t in found] == ["shard-01", "shard-02", "shard-03"]


def test_sources_merge_and_a_name_given_twice_names_both_places(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("shard-09 postgresql://app@db9/shop\n"
                                    "shard-02 postgresql://app@other/shop\n")
    with pytest.raises(ConfigError) as caught:
        load_targets(settings(tmp_path, TABLE + '\n', targets_file=tmp_path / "t.txt"))
    message = str(caught.value)
    assert "t.txt:2: target shard-02 is configured twice" in message
    assert "[tool.zdmigrate.targets] shard-02" in message


def test_the_same_url_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="t:2: target b has the same URL as a"):
        parse_and_check("a postgresql://app@db/shop\nb postgresql+psycopg://app@db/shop\n",
                        tmp_path)


def parse_and_check(text: str, tmp_path: Path) -> list[Target]:
    (tmp_path / "t").write_text(text)
    return load_targets(settings(tmp_path, targets_file=tmp_path / "t"))


@pytest.mark.parametrize(("text", "expected"), [
    ("shard-01\n", "t:1: expected `name URL`, found only 'shard-01'"),
    (f"shard-01 mysql://app:{SECRET}@db/shop\n", "t:1: target shard-01: the database URL is a mysql://"),
    (f"shard-01 postgress://app:{SECRET}@db/shop\n", "t:1: target shard-01"),
    ("ok postgresql://a@b/c\nshard-* postgresql://app@db/shop\n", "t:2: target name 'shard-*' is not a valid name"),
    (f"postgresql://app:{SECRET}@db/shop\n", "t:1: expected `name URL`, found only 'postgresql://app:***@db/shop'"),
])
def test_bad_lines_name_the_file_and_line_and_never_the_password(
    text: str, expected: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_and_check(text, tmp_path)
    assert expected in str(caught.value)
    assert SECRET not in str(caught.value)


def test_a_failing_command_is_bad_config_with_its_last_line_scrubbed(tmp_path: Path) -> None:
    command = f"echo 'cannot reach postgresql://ops:{SECRET}@vault/x' >&2; exit 4"
    with pytest.raises(ConfigError) as caught:
        load_targets(settings(tmp_path, targets_command=command))
    message = str(caught.value)
    assert "failed (exit 4): cannot reach postgresql://ops:***@vault/x" in message
    assert SECRET not in message


def test_a_command_that_prints_a_bad_line_names_its_output_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 2 of its output: expected `name URL`"):
        load_targets(settings(tmp_path, targets_command="echo 'a postgresql://a@b/c'; echo b"))


def test_selection_by_name_and_glob_keeps_the_configured_order() -> None:
    targets = [Target(n, f"postgresql://app@{n}/shop") for n in
               ("shard-10", "shard-02", "tenant-a", "shard-01")]
    assert [t.name for t in select(targets, ["shard-0*"])] == ["shard-02", "shard-01"]
    assert [t.name for t in select(targets, ["tenant-a", "shard-1?", "shard-10"])] == [
        "shard-10", "tenant-a"]
    assert [t.name for t in select(targets, ["shard-0[1]"])] == ["shard-01"]
    assert select(targets, []) == targets
    with pytest.raises(ConfigError, match="'db-\\*' selects no target"):
        select(targets, ["db-*"])
    with pytest.raises(ConfigError, match="shard-3: no target has that name"):
        select(targets, ["shard-3"])


def test_scrub_urls_hides_passwords_of_urls_and_keyword_settings() -> None:
    assert scrub_urls(f"x postgresql://u:{SECRET}@h/d y password={SECRET} z") == (
        "x postgresql://u:***@h/d y password=*** z")


def test_parse_lines_takes_key_value_dsns_whole() -> None:
    found = parse_lines("t1 host=a dbname=b port=5433\n", "src")
    assert found == [Target("t1", "host=a dbname=b port=5433")]


def test_parallel_is_a_whole_number_in_range(tmp_path: Path) -> None:
    assert settings(tmp_path, "[tool.zdmigrate]\nparallel = 8\n").parallel == 8
    assert Settings.load({}, environ={"ZDMIGRATE_PARALLEL": "2"},
                         pyproject=tmp_path / "none.toml").parallel == 2
    for bad in ("0", "x", "1000"):
        with pytest.raises(ConfigError, match="parallel"):
            Settings.load({"parallel": bad}, environ={}, pyproject=tmp_path / "none.toml")


# -- the catalog query, on real PostgreSQL --------------------------------------------------


def test_a_catalog_query_returns_the_targets(tmp_path: Path, dsn: str, db_url: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE shards (name text, url text, active bool)")
        conn.execute("INSERT INTO shards VALUES ('s1', 'postgresql://app@db1/shop', true), "
                     "('s2', 'postgresql://app@db2/shop', true), ('old', 'postgresql://x@y/z', false)")
    found = load_targets(settings(
        tmp_path, targets_catalog_url=db_url,
        targets_query="SELECT name, url FROM shards WHERE active ORDER BY name"))
    assert [(t.name, t.source) for t in found] == [
        ("s1", "targets_query row 1"), ("s2", "targets_query row 2")]


def test_a_catalog_query_that_fails_or_returns_the_wrong_shape(tmp_path: Path, db_url: str) -> None:
    with pytest.raises(ConfigError, match=r"targets_query failed on .*relation \"nope\" does not exist"):
        load_targets(settings(tmp_path, targets_catalog_url=db_url,
                              targets_query="SELECT name, url FROM nope"))
    with pytest.raises(ConfigError, match="must return two columns"):
        load_targets(settings(tmp_path, targets_catalog_url=db_url, targets_query="SELECT 1"))
    with pytest.raises(ConfigError, match="read-only transaction"):
        load_targets(settings(tmp_path, targets_catalog_url=db_url,
                              targets_query="CREATE TABLE t AS SELECT 'a' AS n, 'b' AS u"))


def test_an_unreachable_catalog_is_exit_3_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnreachable) as caught:
        load_targets(settings(tmp_path, targets_query="SELECT 1, 2",
                              targets_catalog_url=f"postgresql://ops:{SECRET}@127.0.0.1:1/fleet"))
    assert caught.value.exit_code == 3
    assert "targets catalog" in str(caught.value)
    assert SECRET not in str(caught.value)


# -- the CLI ------------------------------------------------------------------------------


def test_cli_lists_targets_without_passwords(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(TABLE)
    code, out, err = cli("targets")
    assert code == 0, err
    assert re.search(r"^shard-01 +postgresql://app:\*\*\*@db1/shop ", out, re.M)
    assert "3 target(s)" in out
    assert SECRET not in out + err
    code, payload = cli.json("targets", "--target", "shard-*")
    assert code == 0
    assert [t["name"] for t in payload["targets"]] == ["shard-01", "shard-02"]
    assert SECRET not in json.dumps(payload)


def test_cli_says_when_no_target_is_configured(cli: Cli) -> None:
    code, out, _ = cli("targets")
    assert code == 0
    assert "no targets configured" in out


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_cli_bad_config_is_exit_2_naming_the_source_before_connecting(
    cli: Cli, tmp_path: Path, fmt: str
) -> None:
    (tmp_path / "targets.txt").write_text(
        f"shard-01 postgresql://app:{SECRET}@127.0.0.1:1/shop\n"
        f"shard-01 postgresql://app:{SECRET}@127.0.0.1:2/shop\n")
    (tmp_path / "pyproject.toml").write_text('[tool.zdmigrate]\ntargets_file = "targets.txt"\n')
    for command in (["targets"], ["status"], ["phase", "advance"], ["phase", "rollback"]):
        code, out, err = cli(*command, "--format", fmt)
        assert code == 2, (command, out, err)
        assert "targets.txt:2: target shard-01 is configured twice" in out + err
        assert SECRET not in out + err
        assert "Traceback" not in out + err


def test_cli_a_target_glob_that_selects_nothing_is_exit_2(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(TABLE)
    for command in (["targets"], ["status"], ["phase", "advance"], ["phase", "rollback"]):
        code, _, err = cli(*command, "--target", "db-*")
        assert code == 2, err
        assert "--target 'db-*' selects no target" in err


def test_the_examples_of_docs_many_databases_load(tmp_path: Path) -> None:
    from tests.helpers import ROOT

    text = (ROOT / "docs" / "many-databases.md").read_text()
    table = next(b for b in re.findall(r"```toml\n(.*?)```", text, re.S)
                 if "[tool.zdmigrate.targets]" in b)
    assert [t.name for t in load_targets(settings(tmp_path, table))] == [
        "shard-01", "shard-02", "tenant-acme"]
    listing = re.search(r"```text\n(# shards.*?)```", text, re.S)
    assert listing is not None
    (tmp_path / "targets.txt").write_text(listing.group(1))
    found = load_targets(settings(tmp_path, targets_file=tmp_path / "targets.txt"))
    assert [(t.name, t.url) for t in found] == [
        ("shard-01", "postgresql://migrator@db1.internal/shop"),
        ("shard-02", "postgresql://migrator@db2.internal/shop"),
        ("shard-03", "host=db3.internal dbname=shop user=migrator"),
    ]


def test_each_target_keeps_going_past_a_failure_or_raises_the_first_in_order() -> None:
    from zdmigrate.errors import BadInput, OperationalError
    from zdmigrate.targets import each_target

    targets = [Target(f"t{i}", f"postgresql://db{i}/shop") for i in range(5)]

    def work(target: Target) -> str:
        if target.name in ("t1", "t3"):
            raise (BadInput if target.name == "t1" else OperationalError)(target.name)
        return target.url

    found, failures = each_target(targets, work, parallel=3)
    assert list(found) == ["t0", "t2", "t4"] and list(failures) == ["t1", "t3"]
    assert found["t2"] == "postgresql://db2/shop"
    with pytest.raises(BadInput, match="t1"):
        each_target(targets, work, parallel=3, raise_first=True)
