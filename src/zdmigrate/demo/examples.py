"""Where the demo finds the example shop's migrations: a checkout's, else the installed copy."""

from __future__ import annotations

from pathlib import Path

from zdmigrate.errors import BadInput


def example_migrations() -> Path:
    """The example shop's migrations: `migrations_example/` of a checkout, else the copy
    installed with the package (`zdmigrate._examples`)."""
    candidates = [Path.cwd() / "migrations_example",
                  Path(__file__).resolve().parents[3] / "migrations_example"]
    try:
        from importlib.resources import files

        candidates.append(Path(str(files("zdmigrate._examples"))))
    except ModuleNotFoundError:
        pass
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("0*.py")):
            return candidate
    raise BadInput("cannot find the example migrations",
                   hint="reinstall zdmigrate, or run the demo from a checkout")
