"""Property-based: whatever SQL or Python it is fed, the linter never crashes.

Random text, and real migration SQL mutated (bytes dropped, duplicated, swapped),
go through `lint_sql`; Python files through `zdmigrate lint`. The outcome is
violations (exit 0/1) or a clear bad-input error (exit 2), never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zdmigrate.cli import run
from zdmigrate.lint import Violation, all_rules, lint_sql
from zdmigrate.phases import WORK_PHASES

SEEDS = [ex.sql for rule in all_rules().values() for ex in (*rule.bad, *rule.good)]
SQL_ALPHABET = st.sampled_from([
    *" \n\t;,()'\"$-/*.=<>:[]0123456789abcdefxyz_",
    "SELECT", "ALTER", "TABLE", "ADD", "DROP", "COLUMN", "INDEX", "CONCURRENTLY", "CREATE",
    "NOT NULL", "DEFAULT", "BEGIN", "COMMIT", "$$", "-- zdmigrate: ignore[drop-table] x\n",
    "é", "\u200d", "\x00",
])


@st.composite
def mutated_sql(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(0, 6))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        j = draw(st.integers(i, min(len(text), i + 12)))
        action = draw(st.sampled_from(["drop", "dup", "insert"]))
        if action == "drop":
            text = text[:i] + text[j:]
        elif action == "dup":
            text = text[:j] + text[i:j] + text[j:]
        else:
            text = text[:i] + draw(SQL_ALPHABET) + text[i:]
    return text


def _check(found: list[Violation], text: str) -> None:
    lines = text.count("\n") + 1
    for v in found:
        assert v.rule in all_rules()
        assert v.line is None or 1 <= v.line <= lines, (v, text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.sampled_from(WORK_PHASES), st.sampled_from([10, 11, 12, 15, 18]))
def test_random_text_never_crashes(text: str, phase: object, pg: int) -> None:
    _check(lint_sql(text, phase=phase, pg_version=pg, config={"enable": ["all"]}), text)  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(mutated_sql(), st.sampled_from(WORK_PHASES))
def test_mutated_migration_sql_never_crashes(text: str, phase: object) -> None:
    _check(lint_sql(text, phase=phase, config={"enable": ["all"]}), text)  # type: ignore[arg-type]


PYTHON_SEED = '''revision = "0001_p"
down_revision = None


def expand(ctx):
    ctx.execute("ALTER TABLE users ADD COLUMN note text")  # zdmigrate: ignore[drop-table] x


def contract(ctx):
    ctx.execute("ALTER TABLE users DROP COLUMN legacy")
'''


@st.composite
def mutated_python(draw: st.DrawFn) -> str:
    text = PYTHON_SEED
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text) - 1))
        j = draw(st.integers(i, min(len(text), i + 8)))
        text = text[:i] + draw(st.sampled_from(["", "(", ")", '"', "\n", " ", "x", ":", "ctx."])) + text[j:]
    return text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=mutated_python())
def test_mutated_python_migrations_exit_0_1_or_2(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "m"
    folder.mkdir(exist_ok=True)
    (folder / "0001_p.py").write_text(text)
    code = run(["lint", str(folder), "--format", "json"])
    out, err = capsys.readouterr()
    assert code in (0, 1, 2), err
    assert "Traceback" not in err and "internal error" not in err
    data = json.loads(out)
    if code == 2:  # a clear bad-input error naming the file, as JSON
        assert data["error"]["exit_code"] == 2 and "0001_p.py" in data["error"]["message"]
    else:
        assert "violations" in data
