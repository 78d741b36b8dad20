"""The wheel ships every package, and the example migrations the demo needs."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from tests.helpers import ROOT


def test_every_package_under_src_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT / "src").parts)
        for p in (ROOT / "src").rglob("__init__.py")
    }
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
    assert config["package-dir"]["zdmigrate._examples"] == "migrations_example"


def test_the_wheel_contains_the_example_migrations(tmp_path: Path) -> None:
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("zdmigrate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    examples = {Path(n).name for n in names if n.startswith("zdmigrate/_examples/")}
    assert {p.name for p in (ROOT / "migrations_example").glob("*.py")} <= examples
    assert "zdmigrate/lint/rules/drop_column.py" in names
    assert "zdmigrate/py.typed" in names
