"""`targets`: the configured databases a command would act on, checked, without connecting."""

from __future__ import annotations

from collections.abc import Sequence

from zdmigrate.config import Settings
from zdmigrate.targets import Target, load_targets


def list_targets(settings: Settings, selectors: Sequence[str] = ()) -> list[Target]:
    """The targets `selectors` pick (every configured one without); ``[]`` when none is configured.

    Runs the targets command or query if one is configured; connects to no target.
    Bad configuration is ConfigError (exit 2), naming the source and line.
    """
    return load_targets(settings, selectors)
