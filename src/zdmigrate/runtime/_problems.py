"""Log each runtime problem once while it lasts, and once more when it is over.

The runtime retries forever in the background; logging every failed try would
flood the application's logs during an outage. A problem is keyed by what
failed (``connect``, ``heartbeat``, ...) and the kind of error, so a new kind of
failure is still logged.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("zdmigrate.runtime")


class ProblemLog:
    """Remembers which problems are open; logs on open and on close only."""

    def __init__(self) -> None:
        self._open: dict[str, str] = {}
        self._lock = threading.Lock()

    def report(
        self, what: str, exc: BaseException | str, *, during: str = "",
        level: int = logging.WARNING,
    ) -> None:
        """Log `what` failed with `exc`, unless the same problem is already open."""
        kind = exc if isinstance(exc, str) else type(exc).__name__
        with self._lock:
            if self._open.get(what) == kind:
                return
            self._open[what] = kind
        detail = exc if isinstance(exc, str) else _first_line(exc)
        where = f" (during {during})" if during else ""
        logger.log(level, "zdmigrate runtime: %s failed%s: %s; will retry", what, where, detail)

    def resolved(self, what: str) -> None:
        """Log that `what` works again, if it was failing."""
        with self._lock:
            if self._open.pop(what, None) is None:
                return
        logger.info("zdmigrate runtime: %s works again", what)

    def is_open(self, what: str) -> bool:
        return what in self._open

    def reset(self) -> None:
        """Forget everything (in a forked child: a new lock, nothing open)."""
        self._open = {}
        self._lock = threading.Lock()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
