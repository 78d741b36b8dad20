"""Named failpoints (TiKV's fail-rs, FreeBSD's fail(9)): kill, raise or pause at an exact point.

The engine and the backfill call ``failpoint("engine.step.after_work")`` at the
points where a crash matters most: between work done and progress recorded.
Unarmed, a call is one lookup in an empty module-level dict. A test arms points
with the environment variable, read once when this module is imported::

    ZDMIGRATE_FAILPOINTS="engine.step.after_work=kill@3;backfill.batch.before_cursor=raise"

or, in-process, with `armed` (a test-only hook). Actions:

- ``kill``: SIGKILL of this process (nothing runs after it: no finally, no rollback
  but the server's own);
- ``raise``: raise `FailpointTriggered`;
- ``pause(MS)``: sleep MS milliseconds, then go on;
- ``stop``: SIGSTOP of this process, until a test sends SIGCONT;
- ``ACTION@N``: pass the first N-1 hits, act on the Nth only.

Warning: a point placed inside a transaction fires with that transaction open;
that is the point (the kill proves the transaction's parts commit together).
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from zdmigrate.errors import BadInput

ENV = "ZDMIGRATE_FAILPOINTS"

#: Every point the code calls, with where it sits; `parse` refuses any other name.
POINTS = {
    "engine.step.before": "before a step of a phase runs",
    "engine.step.after_work": "a step's work done, its done-mark not yet written (same transaction)",
    "engine.step.after_commit": "a step and its done-mark committed",
    "engine.phase.before_commit": "every step done, the new phase not yet committed",
    "engine.phase.after_commit": "the new phase committed",
    "backfill.claim.before": "a worker about to claim a range",
    "backfill.claim.after": "a range claimed (committed), no batch of it run",
    "backfill.fence.before": "a batch transaction open, the range's owner not yet checked",
    "backfill.fence.after": "the range locked and still this worker's, the batch not yet run",
    "backfill.batch.before_cursor": "a batch's UPDATE run, its cursor not yet saved (same transaction)",
    "backfill.batch.after_commit": "a batch and its cursor committed",
}


class FailpointTriggered(Exception):
    """Raised by a point armed with ``raise``."""


@dataclass
class Action:
    """What an armed point does, and on which hit."""

    kind: str  # kill, raise, pause, stop
    nth: int = 1
    pause_ms: int = 0
    hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def hit(self, name: str) -> None:
        with self._lock:
            self.hits += 1
            fire = self.hits == self.nth if self.kind != "pause" else self.hits >= self.nth
        if not fire:
            return
        if self.kind in ("kill", "stop"):
            # sent to this thread, so this thread stops or dies before its next
            # instruction; os.kill(getpid()) lets the kernel pick a thread, and a
            # backfill worker could run on past the point (commit its batch)
            signal.pthread_kill(
                threading.get_ident(), signal.SIGKILL if self.kind == "kill" else signal.SIGSTOP)
        elif self.kind == "raise":
            raise FailpointTriggered(f"failpoint {name} (hit {self.hits})")
        else:
            time.sleep(self.pause_ms / 1000)


_ACTION = re.compile(r"^(kill|raise|stop|pause\((\d+)\))(?:@([1-9]\d*))?$")


def parse(spec: str) -> dict[str, Action]:
    """``name=action[@n];...`` as armed points; BadInput naming the bad part."""
    armed: dict[str, Action] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        name, sep, text = (s.strip() for s in part.partition("="))
        if not sep or name not in POINTS:
            raise BadInput(
                f"{ENV}: {part!r} is not NAME=ACTION with a known failpoint name",
                hint="names: " + ", ".join(POINTS),
            )
        match = _ACTION.match(text)
        if match is None:
            raise BadInput(
                f"{ENV}: {text!r} (for {name}) is not an action",
                hint="kill, raise, stop or pause(MS), optionally @N for the Nth hit only",
            )
        kind = "pause" if match.group(2) else match.group(1)
        armed[name] = Action(kind, int(match.group(3) or 1), int(match.group(2) or 0))
    return armed


class _Invalid(dict[str, Action]):
    """Stands for a bad ZDMIGRATE_FAILPOINTS: the first point reached says what is wrong."""

    def __init__(self, error: BadInput) -> None:
        super().__init__()
        self.error = error

    def get(self, key: str, default: object = None) -> Action | None:  # type: ignore[override]
        raise self.error

    def __bool__(self) -> bool:
        return True


def _from_environment() -> dict[str, Action]:
    try:
        return parse(os.environ.get(ENV, ""))
    except BadInput as exc:
        return _Invalid(exc)


_ARMED: dict[str, Action] = _from_environment()


def failpoint(name: str) -> None:
    """Act if `name` is armed; unarmed, one lookup in an empty dict."""
    action = _ARMED.get(name)
    if action is not None:
        action.hit(name)


@contextmanager
def armed(points: Mapping[str, str]) -> Iterator[dict[str, Action]]:
    """Arm points in this process for the block (a test-only hook); yields their actions.

        with armed({"engine.step.after_work": "raise@2"}):
            ...
    """
    global _ARMED
    before = _ARMED
    actions = parse(";".join(f"{name}={action}" for name, action in points.items()))
    _ARMED = actions
    try:
        yield actions
    finally:
        _ARMED = before
