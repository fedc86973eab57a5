"""Output that never blocks the loop: one socket's write buffer (asyncio calls it a transport).

``write(data)`` tries ``send()`` at once (a socket is nearly always writable); whatever the
kernel does not take waits in :attr:`Transport.buffer`, and a writer callback sends it when
the loop says the socket is writable again, then unregisters itself (as
``asyncio.selector_events._SelectorSocketTransport.write`` does).

Closing is the reader's business: a send that fails (the peer reset) only stops the output;
whoever reads the socket finds out too, and calls :meth:`Transport.close`, which closes the
socket once every byte written has been sent.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from nbio_helpers.events import SEND, SEND_WOULD_BLOCK


class Transport:
    """The output side of one accepted, non-blocking socket on one of our loops.

    Parameters
    ----------
    loop:
        Any of the loops (a :class:`~nbio_helpers.loop.reactor.Reactor` is enough).
    sock:
        The accepted socket, already tracked by ``server`` (``server.track(sock)``).
    server:
        The owning :class:`~nbio_helpers.server.Server`: event log, ``close_connection``.
    conn:
        The connection's id in the event log.
    """

    def __init__(self, loop, sock: socket.socket, server, conn: int):
        self.loop, self.sock, self.server, self.id = loop, sock, server, conn
        self.buffer = bytearray()
        self.failed = False  # a send failed: the output is dropped from now on
        self.closing = False  # close() was called: close once the buffer is empty
        self.closed = False
        self.reason = ""
        # Called once when the buffer drains to server.low_water.
        self.on_low_water: Callable[[], object] | None = None

    @property
    def pending(self) -> int:
        """Bytes written but not sent yet."""
        return len(self.buffer)

    def write(self, data: bytes) -> None:
        """Send ``data`` now if the socket takes it, else keep it for later. Never blocks."""
        if self.failed or self.closing or not data:
            return
        if not self.buffer:
            sent = self._send(data)
            if sent is None or sent == len(data):
                return
            data = data[sent:]
            self.loop.add_writer(self.sock, self.flush)
        self.buffer += data

    def flush(self) -> None:
        """Writer callback: send what is pending; unregister once it is all sent."""
        sent = self._send(self.buffer)
        if sent:
            del self.buffer[:sent]
        if self.on_low_water is not None and len(self.buffer) <= self.server.low_water:
            callback, self.on_low_water = self.on_low_water, None
            callback()
        if not self.buffer or self.failed:
            self.loop.remove_writer(self.sock)
            if self.closing:
                self._close()

    def _send(self, data) -> int | None:
        """One ``send()``: bytes taken (0 if the buffer is full), None if the send failed."""
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            self.server.events.record(SEND_WOULD_BLOCK, self.id)
            return 0
        except OSError as exc:  # reset, broken pipe: the reader will see it too
            self.failed = True
            self.buffer.clear()
            self.reason = f"send failed: {type(exc).__name__}"
            return None
        self.server.events.record(SEND, self.id, sent)
        return sent

    def close(self, reason: str = "closed by the server") -> None:
        """Close the socket once every byte written is sent (at once if none is pending).

        The caller must have removed its reader first: the socket is closed here."""
        if self.closing:
            return
        self.closing = True
        self.reason = self.reason or reason
        if not self.buffer or self.failed:
            self.loop.remove_writer(self.sock)
            self._close()

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.server.in_grace_period:  # a graceful stop: wait for the peer's FIN
            self._close_politely()
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)  # our FIN after the last byte
            # Unread input would make close() send a reset, which can destroy the reply we
            # just sent (an error line, say) before the peer reads it: drop it first.
            for _ in range(16):  # bounded: a flooding peer cannot hold us
                if not self.sock.recv(65536):
                    break
        except OSError:  # BlockingIOError included: nothing more now
            pass
        self.server.close_connection(self.sock, self.id, self.reason)

    def _close_politely(self) -> None:
        """Our FIN, then read and drop the peer's input until its FIN (or the end of the grace
        period, when ``stop()`` closes what is left): closing with unread input would reset
        the connection and destroy the end of the reply on its way."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.server.close_connection(self.sock, self.id, self.reason)
            return
        self.loop.add_reader(self.sock, self._drop_input)

    def _drop_input(self) -> None:
        try:
            if self.sock.recv(65536):
                return
        except BlockingIOError:
            return
        except OSError:  # reset: nothing more to wait for
            pass
        self.loop.remove_reader(self.sock)
        self.server.close_connection(self.sock, self.id, self.reason)


__all__ = [
    "Transport",
]
