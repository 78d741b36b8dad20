"""The layers of DESIGN.md hold, and only zdmigrate.state writes SQL against the state schema.

Imports are read with `ast` from every module under src/zdmigrate, lazy imports
inside functions included; imports under ``if TYPE_CHECKING:`` are types only
and do not count. A module may import its own tier or a lower one, never a
higher one.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "zdmigrate"

#: DESIGN.md's dependency direction, lowest first, with the modules it leaves
#: unnamed placed where their imports put them.
TIERS: list[set[str]] = [
    {"errors", "config", "phases", "compat", "steps", "_lazy"},
    {"ops", "lint", "context"},
    {"migration", "lint_targets"},
    {"db", "state", "embedded"},
    {"backfill", "fleet", "shadow_reads"},
    {"engine", "gate"},
    {"output", "_output"},
    {"commands", "cli", "__main__", "zdmigrate"},
    {"demo"},
]
TIER = {name: n for n, names in enumerate(TIERS) for name in names}
#: Beside the tiers: imported by app code, so it depends on nothing heavy.
RUNTIME_MAY_IMPORT = {"errors", "phases", "state"}
#: Side by side in one tier, and never each other.
APART = [("ops", "lint")]

#: (importer, imported): known violations being removed right now. Each must
#: still occur (the test fails when one is fixed, so the list only shrinks).
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {
    ("commands", "demo"): "the import loop commands -> demo -> demo/pipeline -> commands: "
    "arch-commands is dissolving commands.py (issue 12); the demo will sit on top only",
}

STATE_TABLES = {
    "migrations", "phase_log", "steps", "backfills", "backfill_ranges", "instances",
    "run_lock", "schema_version",
}
#: a state table written after a schema placeholder in SQL text: {schema}.steps, %I.instances
STATE_SQL = re.compile(r"(\{\w*\}|%I|%%I)\.(" + "|".join(sorted(STATE_TABLES)) + r")\b")


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = "zdmigrate" if parts == ("__init__",) else parts[0]
        yield name, path, ast.parse(path.read_text(), str(path))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, path: Path) -> Iterator[tuple[str, int]]:
    """(top-level zdmigrate package or module imported, line), TYPE_CHECKING blocks skipped."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from _imports(ast.Module(body=node.orelse, type_ignores=[]), path)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _zdmigrate_target(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = path.relative_to(SRC).parts[:-1]
                base = list(package[: len(package) - (node.level - 1)])
                module = ".".join(["zdmigrate", *base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module == "zdmigrate":
                for alias in node.names:
                    yield from _zdmigrate_target(f"zdmigrate.{alias.name}", node.lineno)
            else:
                yield from _zdmigrate_target(module, node.lineno)
        yield from _imports(node, path)


def _zdmigrate_target(module: str, line: int) -> Iterator[tuple[str, int]]:
    parts = module.split(".")
    if parts[0] == "zdmigrate":
        yield (parts[1] if len(parts) > 1 else "zdmigrate"), line


def _violations() -> list[tuple[str, str, str]]:
    found = []
    for name, path, tree in _modules():
        where = str(path.relative_to(SRC.parent))
        for target, line in _imports(tree, path):
            if target == name:
                continue
            if name == "runtime":
                if target not in RUNTIME_MAY_IMPORT:
                    found.append((name, target, f"{where}:{line}"))
                continue
            if target == "runtime":
                if name != "demo":  # the demo runs simulated app instances
                    found.append((name, target, f"{where}:{line}"))
                continue
            if target not in TIER or name not in TIER:
                found.append((name, target, f"{where}:{line}: not in the tier table"))
            elif TIER[target] > TIER[name] or (name, target) in APART or (target, name) in APART:
                found.append((name, target, f"{where}:{line}"))
    return found


def test_every_module_has_a_tier():
    names = {name for name, _, _ in _modules()} - {"runtime"}
    assert names - set(TIER) == set()


def test_no_lower_layer_imports_a_higher_one():
    found = _violations()
    unknown = [v for v in found if (v[0], v[1]) not in KNOWN_VIOLATIONS]
    assert unknown == []
    fixed = set(KNOWN_VIOLATIONS) - {(v[0], v[1]) for v in found}
    assert fixed == set(), "fixed: remove them from KNOWN_VIOLATIONS"


def _state_sql(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            strings = [a.value for a in node.args
                       if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if fname == "Identifier" and len(node.args) >= 2 and set(strings) & STATE_TABLES:
                yield node.lineno, ast.unparse(node)
            if fname == "table" and set(strings) & STATE_TABLES:
                yield node.lineno, ast.unparse(node)
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and STATE_SQL.search(node.value)):
            yield node.lineno, node.value.strip()[:60]


def test_only_state_writes_sql_against_the_state_schema():
    found = [
        f"{path.relative_to(SRC.parent)}:{line}: {text}"
        for name, path, tree in _modules() if name != "state"
        for line, text in _state_sql(tree)
    ]
    assert found == []


@pytest.mark.parametrize("snippet", [
    'sql.Identifier(schema, "migrations")',
    'state.table(run.schema, "backfills")',
    '"SELECT to_regclass(format(\'%%I.instances\', %s::text))"',
])
def test_the_state_sql_check_sees(snippet):
    assert list(_state_sql(ast.parse(snippet)))
