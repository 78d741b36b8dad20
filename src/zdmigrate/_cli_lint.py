"""`zdmigrate lint` without click: the lean parser the entry point tries first, and the command's body.

Loading click and every command's module costs more than linting a few files,
and `lint` is what CI runs on every push. `parse` reads the options from
`_cli_options`, the table click's `lint` is built from, and takes a command line
only when it is sure click would read it the same way; anything else
(``--help``, an unknown, misspelt or valueless option, a value click would
refuse, global options before the command, shell completion) gives None, and
the entry point hands the command line to click, which prints its own help and
errors. `lint_command` is the body both parsers run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zdmigrate._cli_options import GLOBAL_OPTIONS, LINT_GLOBALS, lint_options
from zdmigrate._entry import failed
from zdmigrate.config import Settings
from zdmigrate.errors import EXIT_CHECK_FAILED, EXIT_OK

#: set by click's shell completion; the lean parser leaves completion to click
COMPLETE_VAR = "_ZDMIGRATE_COMPLETE"


def parse(args: Sequence[str]) -> dict[str, Any] | None:
    """The parameters click's `lint` would get from `args`, or None to let click parse them."""
    if not args or args[0] != "lint" or COMPLETE_VAR in os.environ:
        return None
    options = {option.flag: option for option in lint_options()}
    values: dict[str, Any] = {o.dest: (False if o.is_flag else None) for o in options.values()}
    paths: list[str] = []
    rest = iter(args[1:])
    for token in rest:
        if token == "--":
            paths.extend(rest)
            break
        if token[:1] != "-" or token == "-":
            paths.append(token)
            continue
        name, equals, value = token.partition("=")
        option = options.get(name)
        if option is None:  # --help, -h, an unknown option: click answers
            return None
        if option.is_flag:
            if equals:
                return None
            values[option.dest] = True
            continue
        if not equals:
            following = next(rest, None)
            if following is None or following[:1] == "-":  # missing, or a dash click may read
                return None
            value = following
        if option.choices and value not in option.choices:
            return None
        values[option.dest] = Path(value) if option.path else value
    values["paths"] = tuple(paths)
    return values


def run(args: Sequence[str], *, freeze_loaded: bool = False) -> int | None:
    """Run `zdmigrate lint` from `args` without click: its exit code, or None when click must."""
    values = parse(args)
    if values is None:
        return None
    output_format = values.pop("output_format") or "text"
    flags = {name: values.pop(GLOBAL_OPTIONS[name].dest) for name in LINT_GLOBALS}
    try:
        settings = Settings.load(flags)
        return lint_command(settings, output_format, freeze_loaded=freeze_loaded, **values)
    except (KeyboardInterrupt, Exception) as exc:
        return failed(exc, output_format)


def lint_command(
    settings: Settings, output_format: str, *, paths: tuple[str, ...], phase: str | None,
    pg_version: str | None, since: str | None, strict: bool, use_env: bool, list_rules: bool,
    explain: str | None, freeze_loaded: bool = False,
) -> int:
    """List or explain the rules, or lint `paths` and print the report; the exit code."""
    from zdmigrate.output import lint as reporters

    if list_rules or explain:
        from zdmigrate.lint import _explain

        print(_explain.rules_list(output_format) if list_rules
              else _explain.explain(explain or "", output_format))
        return EXIT_OK
    from zdmigrate import engine

    result = engine.lint(settings, paths, phase=phase, pg_version=pg_version, since=since,
                         env=use_env, freeze_loaded=freeze_loaded)
    if result.notes:  # `output` (all the other commands' renderers) only when there is one
        from zdmigrate import output

        for note in result.notes:
            output.log_line(note)
    color = output_format == "text" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    print(reporters.render(result.violations, output_format, files_checked=result.files_checked,
                           color=color))
    return EXIT_CHECK_FAILED if result.failed(strict) else EXIT_OK
