"""A thread that reads phases, backfill progress and the live fleet from the database for the view.

It reads only: the live fleet is listed without remembering sessions, so
watching never changes what the fleet check will see.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import psycopg

from zdmigrate import fleet
from zdmigrate.demo.progress import DemoProgress
from zdmigrate.state import Store


class Monitor:
    def __init__(self, url: str, schema: str, progress: DemoProgress, interval: float = 0.5):
        self.url = url
        self.schema = schema
        self.progress = progress
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="demo monitor", daemon=True)

    def start(self) -> Monitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5,
                                           application_name="zdmigrate demo monitor")
                self.poll(conn)
            except psycopg.Error:
                pass  # the view shows the last state it read; the next poll tries again
            self._stop.wait(self.interval)
        if conn is not None:
            conn.close()

    def poll_once(self) -> None:
        """One poll on a connection of its own (the final state, after the thread stopped)."""
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=5,
                                 application_name="zdmigrate demo monitor") as conn:
                self.poll(conn)
        except psycopg.Error:
            pass

    def poll(self, conn: psycopg.Connection[Any]) -> None:
        store = Store(conn, self.schema)
        if not store.exists():
            return
        phases = {mid: row.phase for mid, row in store.migrations.load().items()}
        backfills = store.backfills.progress()
        instances = fleet.live_instances(conn, self.schema, remember_sessions=False)
        seen = Counter(i.version for i in instances if i.source == "heartbeat")
        self.progress.update(phases=phases, backfills=backfills, seen=dict(seen))
