"""Cut a connection whose query gets no answer in time: a hung proxy or a silent peer.

TCP keepalives do not notice a proxy that keeps both sockets open but stops
forwarding (its kernel still acknowledges the probes), and a server-side
statement_timeout never fires for a query the server never received. So the
runtime's own queries run under a client-side deadline: when it passes, the
socket is shut down, the blocked query fails at once with a connection error,
and the worker reconnects.

Warning: the socket is shut down, not closed: the file descriptor stays the
connection's until psycopg closes it, so it cannot be reused by another socket
while the watchdog might still act on it (arming and firing share one lock).
"""

from __future__ import annotations

import os
import socket
import threading
import time


class Watchdog:
    """One daemon thread per runtime worker; `arm` before a query, `disarm` after."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._fd: int | None = None
        self._deadline: float | None = None
        self._closed = False
        #: How many connections were cut because a query got no answer in time.
        self.fired = 0
        self._thread: threading.Thread | None = None

    def arm(self, fd: int, seconds: float) -> None:
        """Shut down socket `fd` unless `disarm` is called within `seconds`."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="zdmigrate-runtime-watchdog", daemon=True
                )
                self._thread.start()
            self._fd, self._deadline = fd, time.monotonic() + seconds
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._fd = self._deadline = None

    def cut_now(self) -> bool:
        """Shut down the armed socket at once (stop() while a query hangs); True if one was."""
        with self._cond:
            if self._fd is None:
                return False
            _shutdown(self._fd)
            self._fd = self._deadline = None
            return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._fd = self._deadline = None
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None or self._fd is None:
                    self._cond.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                _shutdown(self._fd)
                self.fired += 1
                self._fd = self._deadline = None


def _shutdown(fd: int) -> None:
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()

