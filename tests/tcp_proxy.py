"""A small TCP proxy for tests: forwards, or hangs (keeps sockets open, forwards nothing), or cuts.

A hung proxy is what keepalives cannot see: the proxy's kernel still
acknowledges every probe, so only silence tells the client something is wrong.
"""

from __future__ import annotations

import select
import socket
import threading


class TcpProxy:
    """Listen on 127.0.0.1:<port> and forward to (host, port) while `forwarding`.

    A `host` starting with / is a Unix socket directory, as libpq reads it.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.forwarding = threading.Event()
        self.forwarding.set()
        self.refusing = False
        self._closed = False
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def hang(self) -> None:
        """Stop forwarding on every connection, old and new; keep them all open."""
        self.forwarding.clear()

    def resume(self) -> None:
        self.refusing = False
        self.forwarding.set()

    def cut(self, *, refuse: bool = False) -> None:
        """Close every connection now; with `refuse`, close new ones at once too (an outage)."""
        self.refusing = refuse
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                try:
                    sock.close()
                except OSError:
                    pass

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                upstream = self._connect_upstream()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        host, port = self.target
        if not host.startswith("/"):
            return socket.create_connection((host, port))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(f"{host}/.s.PGSQL.{port}")
        return sock

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peer = {a: b, b: a}
        try:
            while not self._closed:
                if not self.forwarding.wait(0.05):
                    continue
                ready, _, _ = select.select([a, b], [], [], 0.05)
                for sock in ready:
                    if not self.forwarding.is_set():
                        break
                    data = sock.recv(65536)
                    if not data:
                        return
                    peer[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                try:
                    sock.close()
                except OSError:
                    pass
