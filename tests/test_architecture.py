"""The layers of docs/architecture.md hold, only zdmigrate.state writes SQL against the
state schema, and code outside it goes through its one door, `Store`.

Read from the source (ast), so a lazy import inside a function counts too; an
import under ``if TYPE_CHECKING:`` is for types only and does not. The allowed
exceptions are listed, each with its reason.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "zdmigrate"

#: Each top-level module or package of zdmigrate and its layer, lowest first.
#: A module may import its own layer and the layers below; ops and lint never each other.
LAYER = {
    "__init__": 0, "errors": 0, "config": 0, "phases": 0, "compat": 0, "steps": 0, "_lazy": 0,
    "_lint_render": 0, "dsn": 0, "failpoints": 0,
    "ops": 1, "lint": 1,
    "db": 2, "data_problems": 2, "state": 2, "context": 2, "migration": 2, "lint_targets": 2,
    "embedded": 2, "_examples": 2, "autogenerate": 2, "alembic_bridge": 2, "_alembic_layout": 2,
    "targets": 2,
    "backfill": 3, "fleet": 3, "shadow_reads": 3,
    "engine": 4, "gate": 4,
    "output": 5,
    "cli": 6, "__main__": 6, "_entry": 6, "_cli_lint": 6, "_cli_options": 6,
    "demo": 7,
}
#: runtime stands beside the layers: app code imports it, it imports almost nothing.
#: It reads phases and writes heartbeats through state (one owner per table), which is
#: as light as the runtime (tests/test_runtime_imports.py).
RUNTIME_MAY_IMPORT = {"errors", "phases", "state", "dsn"}

ALLOWED = {
    # the facade points at a few classes lazily (PEP 562), for `from zdmigrate import X`
    ("__init__", "context"), ("__init__", "migration"),
    # the `demo` command is the one way into the demo, imported when it runs
    ("cli", "demo"),
}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _is_type_checking(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(tree: ast.AST) -> Iterator[ast.AST]:
    """`ast.walk`, minus the bodies of ``if TYPE_CHECKING:`` blocks (their else counts)."""
    for node in ast.iter_child_nodes(tree):
        if _is_type_checking(node):
            assert isinstance(node, ast.If)
            for other in node.orelse:
                yield other
                yield from _walk(other)
            continue
        yield node
        yield from _walk(node)


def _imports() -> list[tuple[str, str, str]]:
    """(importing module, its part, imported part) for every zdmigrate import in src."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        me = _part(module)
        for node in _walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = ([f"zdmigrate.{a.name}" for a in node.names]
                           if node.module == "zdmigrate" else [node.module])
            for target in targets:
                if target.startswith("zdmigrate.") and _part(target) != me:
                    found.append((module, me, _part(target)))
    return found


def test_every_part_of_zdmigrate_has_a_layer() -> None:
    parts = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert parts - {"__init__", "runtime"} <= set(LAYER)


def test_no_module_imports_a_higher_layer() -> None:
    wrong = []
    for module, me, other in _imports():
        if (me, other) in ALLOWED or (me == "demo" and other == "runtime"):
            continue
        if me == "runtime":
            if other not in RUNTIME_MAY_IMPORT:
                wrong.append(f"{module} -> zdmigrate.{other} (runtime stands apart)")
            continue
        if other == "runtime":
            wrong.append(f"{module} -> zdmigrate.runtime (only apps and the demo use it)")
            continue
        if LAYER[other] > LAYER[me] or {me, other} == {"ops", "lint"}:
            wrong.append(f"{module} (layer {LAYER[me]}) -> zdmigrate.{other} (layer {LAYER[other]})")
    assert wrong == []


def test_the_probe_sees_a_lazy_import_inside_a_function() -> None:
    # the check above is meaningful: cli's lazy import of the demo is found
    assert ("zdmigrate.cli", "cli", "demo") in _imports()


def test_the_probe_skips_type_checking_imports() -> None:
    tree = ast.parse("if TYPE_CHECKING:\n    import a\nelse:\n    import b\nimport c\n")
    names = [a.name for n in _walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert names == ["b", "c"]


def test_engine_names_stay_the_commands_after_their_modules_are_imported() -> None:
    code = (
        "import types, zdmigrate.engine as engine\n"
        "import zdmigrate.engine.status, zdmigrate.engine.lint, zdmigrate.engine.advance\n"
        "assert not any(isinstance(getattr(engine, n), types.ModuleType) for n in engine.__all__)\n"
        "assert engine.status.__module__ == 'zdmigrate.engine.status'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_engine_exports_are_defined_where_the_map_says() -> None:
    engine = importlib.import_module("zdmigrate.engine")
    for name in engine.__all__:
        value = getattr(engine, name)
        assert not isinstance(value, ModuleType), name
    assert sorted(engine._EXPORTS) == sorted(engine.__all__)


# -- one owner per table: SQL against the state schema only in zdmigrate.state ---------------

STATE_TABLES = {
    "migrations", "phase_log", "steps", "backfills", "backfill_ranges", "instances",
    "run_lock", "schema_version",
}
#: a state table written after a schema placeholder in SQL text: {schema}.steps, %I.instances
STATE_SQL = re.compile(r"(\{\w*\}|%I|%%I)\.(" + "|".join(sorted(STATE_TABLES)) + r")\b")


def _state_sql(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, text) of every place that names a state table in SQL: an identifier
    ``sql.Identifier(schema, "migrations")``, ``state.table(schema, "backfills")``, or
    SQL text such as ``{schema}.steps`` or ``%I.instances``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            strings = {a.value for a in node.args
                       if isinstance(a, ast.Constant) and isinstance(a.value, str)}
            if (name == "Identifier" and len(node.args) >= 2 and strings & STATE_TABLES) or (
                name == "table" and strings & STATE_TABLES
            ):
                yield node.lineno, ast.unparse(node)
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and STATE_SQL.search(node.value)):
            yield node.lineno, node.value.strip()[:60]


def test_only_state_writes_sql_against_the_state_schema() -> None:
    found = [
        f"{path.relative_to(SRC.parent)}:{line}: {text}"
        for path in sorted(SRC.rglob("*.py"))
        if path.relative_to(SRC).parts[0] != "state"
        for line, text in _state_sql(ast.parse(path.read_text()))
    ]
    assert found == []


@pytest.mark.parametrize("snippet", [
    'sql.Identifier(schema, "migrations")',
    'state.table(run.schema, "backfills")',
    "\"SELECT to_regclass(format('%%I.instances', %s::text))\"",
    '"DELETE FROM {schema}.steps WHERE migration_id = %s"',
])
def test_the_state_sql_probe_sees(snippet: str) -> None:
    assert list(_state_sql(ast.parse(snippet)))


# -- one door to state: code outside zdmigrate.state uses Store, not the table functions ------


def _state_door_misuse(tree: ast.AST, door: set[str]) -> Iterator[tuple[int, str]]:
    """(line, text) of every use of zdmigrate.state that bypasses its door: an import of a
    table module or a name not in ``zdmigrate.state.__all__``, or ``state.<name>`` for
    such a name on the package imported as a module."""
    aliases: set[str] = set()  # local names bound to the package zdmigrate.state
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "zdmigrate.state" and a.asname:
                    aliases.add(a.asname)
                elif a.name.startswith("zdmigrate.state."):
                    yield node.lineno, f"import {a.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "zdmigrate":
                aliases |= {a.asname or a.name for a in node.names if a.name == "state"}
            elif node.module == "zdmigrate.state":
                yield from ((node.lineno, f"from zdmigrate.state import {a.name}")
                            for a in node.names if a.name not in door)
            elif node.module.startswith("zdmigrate.state."):
                yield node.lineno, f"from {node.module} import ..."
    for node in _walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr not in door):
            yield node.lineno, ast.unparse(node)


def _state_door() -> set[str]:
    state = importlib.import_module("zdmigrate.state")
    return set(state.__all__)


def test_the_state_door_exports_no_table_function() -> None:
    state = importlib.import_module("zdmigrate.state")
    callables = [name for name in state.__all__
                 if isinstance(getattr(state, name), ModuleType)
                 or (callable(getattr(state, name)) and not isinstance(getattr(state, name), type))]
    assert "Store" in state.__all__
    assert callables == []


def test_code_outside_state_goes_through_store() -> None:
    door = _state_door()
    found = [
        f"{path.relative_to(SRC.parent)}:{line}: {text}"
        for path in sorted(SRC.rglob("*.py"))
        if path.relative_to(SRC).parts[0] != "state"
        for line, text in _state_door_misuse(ast.parse(path.read_text()), door)
    ]
    assert found == []


@pytest.mark.parametrize("snippet", [
    "from zdmigrate import state\nstate.set_phase(conn, schema, 'm', phase, 'x')",
    "from zdmigrate import state as st\nst.load_migrations(conn, schema)",
    "import zdmigrate.state as st\nst.ensure_schema(conn, schema)",
    "from zdmigrate.state import ensure_schema",
    "from zdmigrate.state import migrations",
    "from zdmigrate.state.backfills import backfill_progress",
    "from zdmigrate.state.store import Backfills",
    "import zdmigrate.state.steps",
    "def f():\n    from zdmigrate import state\n    return state.done_steps(c, s, 'm', p, 'advance')",
])
def test_the_state_door_probe_sees(snippet: str) -> None:
    assert list(_state_door_misuse(ast.parse(snippet), _state_door()))


@pytest.mark.parametrize("snippet", [
    "from zdmigrate.state import MigrationRow, Store\nStore(conn, schema).migrations.load()",
    "from zdmigrate import state\nrow: state.MigrationRow\nstate.Store(conn, schema).exists()",
    "state = LintState()\nstate.track(stmt)",
])
def test_the_state_door_probe_lets_pass(snippet: str) -> None:
    assert list(_state_door_misuse(ast.parse(snippet), _state_door())) == []


# -- one place draws: rich (bars, live views, tables) only in output/ ------------------------


def test_only_output_draws_with_rich() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] == "output":
            continue
        for node in _walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(SRC.parent)}:{node.lineno}: {name}"
                      for name in names if name == "rich" or name.startswith("rich.")]
    assert found == []
