"""The ``polling`` model: non-blocking sockets, asked again and again whether data is there.

Each round tries ``accept()`` on the listener and ``recv()``/``send()`` on every connection;
most attempts raise ``BlockingIOError``. With ``interval=0`` the loop never rests and burns a
whole core; sleeping ``interval`` seconds between rounds saves CPU but delays every reply.
"""

from __future__ import annotations

from typing import Any

from nbio_helpers.connection import Connection, accept_all, close_finished
from nbio_helpers.events import ACCEPT_WOULD_BLOCK, WAKEUP
from nbio_helpers.server import Server


class PollingServer(Server):
    """Polls every socket in a loop, sleeping ``interval`` seconds between rounds (0 = busy)."""

    model = "polling"
    taught_in = (3, 1)  # the polling loop of notebook 03 (there as the classic server)
    concurrent = True
    nonblocking = True
    max_connections = None
    buffers_output = True
    backpressure = True
    connection_class = Connection
    logs_connections = True

    def __init__(self, *args: Any, interval: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if interval < 0:
            raise ValueError(f"interval must be >= 0 seconds, not {interval!r}")
        self.interval = interval

    def serve(self) -> None:
        self.listener.setblocking(False)
        connections = []
        while not self.stopping:
            new = accept_all(self)  # BlockingIOError inside = nobody waiting
            if not new:
                self.events.record(ACCEPT_WOULD_BLOCK)
            connections += new
            for conn in connections:  # ask every socket, ready or not
                if conn.wants_read:
                    conn.on_readable()
                if conn.wants_write:
                    conn.on_writable()
            connections = close_finished(connections)  # close those that are done
            if self.interval:
                self.sleep(self.interval)  # like time.sleep(), but stop() cuts it short
                self.events.record(WAKEUP)


__all__ = [
    "PollingServer",
]
