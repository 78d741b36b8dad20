"""The `zdmigrate` entry point: `lint` on a lean path without click, every other command through it.

The console script and ``python -m zdmigrate`` start in `main`; `zdmigrate.cli.run`
(tests, embedding) is `run`. `_cli_lint` takes a `lint` command line it is sure
of; anything else goes to click (`zdmigrate.cli`), so help and errors are
click's in both cases.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence

from zdmigrate.errors import EXIT_OPERATIONAL, ZdmigrateError

#: True once `main` runs: the process ends with the command (see `main`)
_process = {"entry": False}


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the command and exit with the contract's exit code."""
    # The process ends with the command, so what is loaded by now (modules, classes) lives
    # to the end: frozen, the cyclic GC stops walking it again on every full pass (a few
    # percent of a lint; `lint` freezes the loaded revisions too). Only here, in the
    # process entry: `run` (tests, embedding) leaves the host's GC alone.
    gc.freeze()
    _process["entry"] = True
    sys.exit(run(argv))


def is_process_entry() -> bool:
    """Whether the command runs in a process of its own, which ends with it (`main`)."""
    return _process["entry"]


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (for tests and embedding)."""
    from zdmigrate import _cli_lint

    args = sys.argv[1:] if argv is None else list(argv)
    code = _cli_lint.run(args, freeze_loaded=is_process_entry())
    if code is not None:
        return code
    from zdmigrate.cli import run_click

    return run_click(args)


def failed(exc: BaseException, output_format: str) -> int:
    """Report an error that ended a command (not click's own) and return its exit code."""
    if isinstance(exc, ZdmigrateError):
        from zdmigrate import output

        output.error(exc, output_format)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        sys.stderr.write("interrupted\n")
        return 130
    if os.environ.get("ZDMIGRATE_DEBUG"):  # a bug in zdmigrate, not a user mistake
        import traceback

        traceback.print_exception(exc)
    sys.stderr.write(
        f"internal error: {type(exc).__name__}: {exc}\n"
        "  this is a bug in zdmigrate; set ZDMIGRATE_DEBUG=1 to see the traceback\n"
    )
    return EXIT_OPERATIONAL
