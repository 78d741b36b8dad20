"""docs/rules.md documents every rule and its examples give the documented result; lint.md runs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from zdmigrate.cli import run
from zdmigrate.lint import LintConfig, all_rules, lint_sql
from zdmigrate.lint._explain import rules_markdown
from zdmigrate.phases import Phase

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOCS = Path(__file__).resolve().parents[1] / "docs"
EXAMPLE = re.compile(
    r"^(Bad|Safe) \((reported|not reported) in phase ([a-z-]+), PostgreSQL (\d+)\):\n\n```sql\n(.*?)\n```",
    re.S | re.M,
)


def _sections() -> dict[str, str]:
    text = (DOCS / "rules.md").read_text()
    parts = re.split(r"^## ", text, flags=re.M)[1:]
    return {part.split("\n", 1)[0].strip(): part for part in parts}


def test_rules_md_is_current() -> None:
    assert (DOCS / "rules.md").read_text() == rules_markdown(), (
        "regenerate: python -c 'from zdmigrate.lint._explain import rules_markdown; "
        "open(\"docs/rules.md\", \"w\").write(rules_markdown())'"
    )


def test_every_rule_is_documented_with_bad_and_safe_examples() -> None:
    sections = _sections()
    assert set(sections) == set(all_rules())
    for rule_id, body in sections.items():
        kinds = {m.group(1) for m in EXAMPLE.finditer(body)}
        assert kinds == {"Bad", "Safe"}, rule_id


@pytest.mark.parametrize("rule_id", sorted(all_rules()))
def test_documented_examples_give_the_documented_result(rule_id: str) -> None:
    body = _sections()[rule_id]
    for m in EXAMPLE.finditer(body):
        _, verdict, phase, pg, sql = m.groups()
        found = lint_sql(sql, phase=Phase.parse(phase), pg_version=int(pg), config={"enable": ["all"]})
        fired = rule_id in {v.rule for v in found}
        assert fired == (verdict == "reported"), (rule_id, sql, [v.rule for v in found])


def _blocks(lang: str) -> list[str]:
    text = (DOCS / "lint.md").read_text()
    return re.findall(rf"^```{lang}\n(.*?)\n```", text, flags=re.S | re.M)


def test_lint_md_example_output_is_real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    sql = _blocks("sql")[0]
    expected = _blocks("text")[0]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "0007_orders.sql").write_text(sql + "\n")
    assert run(["lint", "0007_orders.sql"]) == 1
    assert capsys.readouterr().out.strip() == expected.strip()
    # "--phase contract reports only the index"
    assert run(["lint", "0007_orders.sql", "--phase", "contract", "--format", "json"]) == 1
    assert '"rule": "create-index-not-concurrently"' in capsys.readouterr().out


def test_lint_md_suppression_and_config_examples_work() -> None:
    suppression = _blocks("sql")[1]
    assert "ignore[" in suppression and lint_sql(suppression) == []
    (toml,) = _blocks("toml")
    config = LintConfig.from_mapping(tomllib.loads(toml)["tool"]["zdmigrate"]["lint"])
    assert config.pg_version == 14 and config.since == "0007_orders"
