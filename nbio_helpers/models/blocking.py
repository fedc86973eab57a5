"""The ``blocking`` model: one client at a time, blocking calls throughout.

While one client is being served, ``recv()`` blocks the only thread: every other client waits
in the listen backlog until this one disconnects.
"""

from __future__ import annotations

import socket
from typing import Any

from nbio_helpers.connection import accept_all, echo_upper
from nbio_helpers.events import EOF, RECV, SEND
from nbio_helpers.server import Server


class BlockingServer(Server):
    """Serves clients one after another with blocking ``accept``/``recv``/``sendall``.

    Parameters
    ----------
    delay:
        Seconds to wait before each reply (a slow server, for the timelines of notebook 01).
    """

    model = "blocking"
    taught_in = (1, 1)
    backpressure = True  # sendall() blocks: nothing more is read until the client reads
    logs_connections = True

    def __init__(self, *args: Any, delay: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delay = delay

    def serve(self) -> None:
        self.listener.setblocking(False)  # so that accept() can never wait (notebook 02)
        while self.wait_for_client():
            for sock in accept_all(self, make=lambda sock, server: sock, limit=1):
                sock.setblocking(True)
                self.handle(sock, self.track(sock))

    def handle(self, sock: socket.socket, cid: int) -> None:
        """Echo until the client closes: the whole server waits inside this call."""
        reason = "server stopping"  # unless the client closes first
        try:
            while not self.stopping:
                data = sock.recv(self.recv_size)  # blocks until data or EOF
                if not data:
                    self.events.record(EOF, cid)
                    reason = "peer closed"
                    break
                self.events.record(RECV, cid, len(data))
                self.sleep(self.delay)  # a slow server (0 s: not slow); stop() cuts it short
                sock.sendall(echo_upper(data))  # blocks until all is sent
                self.events.record(SEND, cid, len(data))
        except OSError as exc:
            reason = f"{type(exc).__name__}" if not self.stopping else "server stopping"
        finally:
            self.close_connection(sock, cid, reason)


__all__ = [
    "BlockingServer",
]
