"""Client-side tracing: a notebook records its own ``recv()`` calls in an :class:`EventLog`.

Servers record what *they* do; :class:`TracedSocket` records what a client cell does, into
the same kind of log and on the same clock (``time.monotonic()``), so both can be drawn on
one timeline::

    log = EventLog()
    with TracedSocket(connect(server.address), log, conn="client A") as sock:
        sock.sendall(b"hello")
        sock.recv(1024)                     # records RECV_CALL, then RECV (5 bytes)
    plot_timeline(log.events())

    sock.setblocking(False)
    try:
        sock.recv(1024)                     # records RECV_CALL, then WOULD_BLOCK
    except BlockingIOError:
        pass

Each ``recv()`` records ``recv_call`` when it is called, then, when it returns, one of
``recv`` (with ``nbytes``), ``eof`` (it returned ``b''``), ``would_block``
(``BlockingIOError``) or ``error`` (``detail`` = ``"timeout"`` or the exception's name).
``conn`` labels the connection in the log: any hashable (``"A"``, ``1``...).
"""

from __future__ import annotations

import heapq
import socket
from collections.abc import Iterable

from nbio_helpers.events import (
    EOF,
    ERROR,
    RECV,
    RECV_CALL,
    SEND,
    SEND_WOULD_BLOCK,
    WOULD_BLOCK,
    Event,
    EventLog,
)


class TracedSocket:
    """Wraps a socket and records each ``recv``/``send`` in ``log``. Everything else is passed
    through to the wrapped socket (``settimeout``, ``setblocking``, ``fileno``, ``close``...),
    so it can be used wherever the socket was, including ``select()``.

    Parameters
    ----------
    sock:
        The socket to trace (it stays usable directly, untraced, as :attr:`sock`).
    log:
        Where to record; a new :class:`EventLog` if omitted (read it as ``.log``).
    conn:
        The label of this connection on a timeline (e.g. ``"client A"``).
    """

    def __init__(self, sock: socket.socket, log: EventLog | None = None, conn=None):
        self.sock = sock
        self.log = log if log is not None else EventLog()
        self.conn = conn

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """``sock.recv``, recorded: ``recv_call`` now, then how it ended."""
        self.log.record(RECV_CALL, self.conn)
        try:
            data = self.sock.recv(bufsize, flags)
        except BlockingIOError:
            self.log.record(WOULD_BLOCK, self.conn)
            raise
        except TimeoutError:  # socket.timeout is TimeoutError since Python 3.10
            self.log.record(ERROR, self.conn, detail="timeout")
            raise
        except OSError as exc:
            self.log.record(ERROR, self.conn, detail=type(exc).__name__)
            raise
        self.log.record(RECV if data else EOF, self.conn, len(data))
        return data

    def send(self, data, flags: int = 0) -> int:
        """``sock.send``, recorded as ``send`` (bytes taken) or ``send_would_block``."""
        try:
            sent = self.sock.send(data, flags)
        except BlockingIOError:
            self.log.record(SEND_WOULD_BLOCK, self.conn)
            raise
        self.log.record(SEND, self.conn, sent)
        return sent

    def sendall(self, data, flags: int = 0) -> None:
        """``sock.sendall``, recorded as one ``send`` event once everything was sent."""
        self.sock.sendall(data, flags)
        self.log.record(SEND, self.conn, len(data))

    def __getattr__(self, name):
        # Only called for attributes not found on the wrapper: delegate to the socket.
        return getattr(self.sock, name)

    def __enter__(self) -> TracedSocket:
        return self

    def __exit__(self, *exc_info) -> None:
        self.sock.close()

    def __repr__(self) -> str:
        return f"<TracedSocket conn={self.conn!r}>"


def merge_events(*sources: EventLog | Iterable[Event]) -> list[Event]:
    """One time-ordered list of the events of several logs (or event lists).

    Servers and traced clients all stamp events with ``time.monotonic()``, so a server's log
    and a client's log merge into one timeline: ``plot_timeline(merge_events(server.events, log))``.
    """
    lists = [src.events() if isinstance(src, EventLog) else list(src) for src in sources]
    return list(heapq.merge(*(sorted(events, key=_time) for events in lists), key=_time))


def _time(event: Event) -> float:
    return event.t


__all__ = ["TracedSocket", "merge_events"]
