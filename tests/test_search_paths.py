"""search_paths: which version schemas each app version needs, from files and phases."""

from __future__ import annotations

from pathlib import Path

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
