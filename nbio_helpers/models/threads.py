"""The ``threads`` model: a thread per client, each doing blocking IO.

Blocking calls are fine when each client has its own thread: the operating system switches
between threads whenever one blocks. The price is a thread (stack, scheduling) per client.
"""

from __future__ import annotations

import socket
import threading

from nbio_helpers.connection import accept_all, echo_upper
from nbio_helpers.events import EOF, ERROR, RECV, SEND
from nbio_helpers.server import Server


class ThreadsServer(Server):
    """Accepts in the server thread and serves each client in a thread of its own."""

    model = "threads"
    taught_in = (1, 3)
    concurrent = True
    max_connections = None
    backpressure = True  # sendall() blocks the client's thread until the client reads
    logs_connections = True

    def serve(self) -> None:
        # accept_all() takes every waiting client without blocking, and copes with running
        # out of descriptors (a thread per client makes that likely) instead of dying.
        self.listener.setblocking(False)
        while self.wait_for_client():
            for sock in accept_all(self, make=lambda sock, server: sock):
                self.start_worker(sock)

    def start_worker(self, sock: socket.socket) -> None:
        """Serve ``sock`` in a new thread of its own (``stop()`` joins it)."""
        sock.setblocking(True)  # an accepted socket may inherit non-blocking (macOS, Windows)
        cid = self.track(sock)
        worker = threading.Thread(
            target=self.handle, args=(sock, cid), name=f"nbio-{self.name}-client-{cid}", daemon=True
        )
        try:
            started = self.start_thread(worker)
        except RuntimeError as exc:  # "can't start new thread": turn this client away
            self.count_refusal("cannot start another thread")
            self.events.record(ERROR, cid, detail=f"{exc}: a client was turned away")
            self.close_connection(sock, cid, "no thread for it")
            return
        if not started:  # stop() has begun
            self.close_connection(sock, cid, "server stopping")

    def handle(self, sock: socket.socket, cid: int) -> None:
        """Echo until the client closes (runs in the client's own thread)."""
        self.cpu.enter()
        reason = "server stopping"  # unless the client closes first
        try:
            while not self.stopping:
                data = sock.recv(self.recv_size)  # blocks only this client's thread
                if not data:
                    self.events.record(EOF, cid)
                    reason = "peer closed"
                    break
                self.events.record(RECV, cid, len(data))
                sock.sendall(echo_upper(data))
                self.events.record(SEND, cid, len(data))
        except OSError as exc:
            reason = "server stopping" if self.stopping else type(exc).__name__
        finally:
            self.close_connection(sock, cid, reason)
            self.cpu.exit()


__all__ = [
    "ThreadsServer",
]
