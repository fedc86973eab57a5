"""A connection for coroutines on our loop: ``await read()``, ``write()``, ``await drain()``.

What asyncio splits into ``StreamReader`` and ``StreamWriter``, for the ``tasks`` echo model:

* ``await stream.read(n)`` tries ``recv()`` and only if it would block awaits the loop's
  ``readable()`` future (trio's ``_nonblocking_helper``); if the data was there at once it
  lets the other tasks run first (``sleep(0)``): every read is a scheduling point, as in trio;
* ``stream.write(data)`` hands the bytes to a :class:`~.transport.Transport` (never blocks);
* ``await stream.drain()`` is backpressure: while more than ``high_water`` bytes are pending
  it waits (``PAUSE``) until the transport has sent them down to ``low_water`` (``RESUME``),
  the server's water marks, which every model applies.

It records ``RECV``, ``EOF``, ``SEND``, ``SEND_WOULD_BLOCK``, ``PAUSE``, ``RESUME`` and
``CLOSE`` in the server's event log, as the other models do.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from nbio_helpers.events import EOF, PAUSE, RECV, RESUME
from nbio_helpers.loop.coroutines import Future
from nbio_helpers.loop.transport import Transport

if TYPE_CHECKING:
    from nbio_helpers.loop.coroutines import Loop
    from nbio_helpers.loop.servers import LoopServer


class Stream:
    """One accepted socket, for a coroutine on a :class:`~.coroutines.Loop`.

    Parameters
    ----------
    server:
        The owning server (``high_water``, event log; the socket is tracked here).
    loop:
        The :class:`~.coroutines.Loop` the coroutine runs on.
    sock:
        The accepted socket (made non-blocking here).
    """

    def __init__(self, server: LoopServer, loop: Loop, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.server, self.loop, self.sock = server, loop, sock
        self.id = server.track(sock)
        self.transport = Transport(loop, sock, server, self.id)
        self.reason = "peer closed and every byte was sent"
        self._yield_first = False  # the last read did not wait: let others run first

    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b''`` at the end of the stream (or when the peer reset).

        Always a scheduling point: if the previous read found its data there at once (it did
        not wait), this one first lets the other ready tasks run. Without that, a client that
        answers at once would keep ``recv()`` succeeding, its task would never give the loop
        back, and the others would starve. (Yielding *before* the ``recv()``, not after it,
        means that a task cancelled at that point has read nothing it would fail to answer.)"""
        if self._yield_first:
            await self.loop.sleep(0)
        waited = False
        while True:
            try:
                data = self.sock.recv(n)
            except BlockingIOError:
                await self.loop.readable(self.sock)
                waited = True
                continue
            except OSError as exc:  # reset by the peer
                self.reason = f"recv failed: {type(exc).__name__}"
                return b""
            self.server.events.record(RECV if data else EOF, self.id, len(data))
            self._yield_first = not waited
            return data

    def write(self, data: bytes) -> None:
        """Queue ``data`` for sending (sent at once if the socket takes it); never blocks."""
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait while too much output is pending (more than ``high_water`` bytes)."""
        if self.transport.pending <= self.server.high_water or self.transport.failed:
            return
        self.server.events.record(PAUSE, self.id, self.transport.pending)
        resumed = Future()
        self.transport.on_low_water = lambda: resumed.set_result(None)
        try:
            await resumed
        finally:
            self.transport.on_low_water = None
        self.server.events.record(RESUME, self.id, self.transport.pending)

    def close(self, reason: str | None = None) -> None:
        """Close once every pending byte is sent (our EOF after the last one)."""
        self.transport.close(reason or self.reason)


__all__ = ["Stream"]
