"""Per-connection state shared by the non-blocking models (polling, select, selectors).

A :class:`Connection` owns one non-blocking socket and its output buffer. The models differ
only in *when* they call :meth:`Connection.on_readable` and :meth:`Connection.on_writable`
(always, after ``select()`` said so, after ``epoll`` said so); what happens then is here,
written once:

* ``recv()`` may raise ``BlockingIOError`` (no data yet): recorded, nothing else happens;
* ``recv()`` returning ``b''`` means the peer will send no more: finish sending, then close;
* the reply goes into ``outbuf``; ``send()`` may take only part of it (a *partial send*):
  the rest stays in ``outbuf`` for the next time the socket is writable;
* backpressure: while ``outbuf`` holds more than ``high_water`` bytes, :attr:`wants_read`
  is False, so the loop stops reading this client until it drains.
"""
from __future__ import annotations

import errno
import socket

from .events import EOF, ERROR, PAUSE, RECV, RESUME, SEND, SEND_WOULD_BLOCK, WOULD_BLOCK
from .limits import OUT_OF_DESCRIPTORS, RESERVE


def echo_upper(data: bytes) -> bytes:
    """The protocol of every model: the same bytes, ASCII letters upper-cased."""
    return data.upper()


class Connection:
    """One accepted, non-blocking socket of an echo server, and its pending output.

    Parameters
    ----------
    sock:
        The accepted socket; made non-blocking here.
    server:
        The owning :class:`~nbio_helpers.server.Server` (event log, limits, closing).
    """

    def __init__(self, sock: socket.socket, server):
        sock.setblocking(False)
        self.sock = sock
        self.server = server
        self.id = server.track(sock)
        self.outbuf = bytearray()
        self.peer_done = False   # recv() returned b''
        self.closed = False
        self.paused = False      # backpressure in force

    @property
    def wants_read(self) -> bool:
        """Read from this socket? Not after EOF, nor while too much output is pending."""
        return not self.closed and not self.peer_done and not self.paused

    @property
    def wants_write(self) -> bool:
        """Write to this socket? Only while output is pending."""
        return not self.closed and bool(self.outbuf)

    def fileno(self) -> int:
        """So that a Connection can be passed to ``select()`` directly."""
        return self.sock.fileno()

    def on_readable(self) -> None:
        """Try one ``recv()``; queue the reply. Never blocks, never raises for the peer's faults."""
        try:
            data = self.sock.recv(self.server.recv_size)
        except BlockingIOError:
            self.server.events.record(WOULD_BLOCK, self.id)
            return
        except OSError as exc:  # reset by peer, etc.
            self.close(f"recv failed: {type(exc).__name__}")
            return
        if not data:
            self.server.events.record(EOF, self.id)
            self.peer_done = True
            self._close_if_finished()
            return
        self.server.events.record(RECV, self.id, len(data))
        self.outbuf += echo_upper(data)
        if len(self.outbuf) > self.server.high_water:
            self.paused = True
            self.server.events.record(PAUSE, self.id, len(self.outbuf))

    def on_writable(self) -> None:
        """Try one ``send()`` of the pending output; keep whatever it did not take."""
        try:
            sent = self.sock.send(self.outbuf)
        except BlockingIOError:
            self.server.events.record(SEND_WOULD_BLOCK, self.id)
            return
        except OSError as exc:  # broken pipe, reset by peer
            self.close(f"send failed: {type(exc).__name__}")
            return
        del self.outbuf[:sent]
        self.server.events.record(SEND, self.id, sent)
        if self.paused and len(self.outbuf) <= self.server.high_water // 2:
            self.paused = False
            self.server.events.record(RESUME, self.id, len(self.outbuf))
        self._close_if_finished()

    def close(self, reason: str) -> None:
        """Close the socket (once) and record why."""
        if not self.closed:
            self.closed = True
            self.server.close_connection(self.sock, self.id, reason)

    def _close_if_finished(self) -> None:
        if self.peer_done and not self.outbuf:
            try:
                self.sock.shutdown(socket.SHUT_WR)  # our EOF, after the last byte of reply
            except OSError:
                pass
            self.close("peer closed and every byte was sent")


def accept_all(server, make=Connection) -> list:
    """Accept every client waiting on ``server.listener`` (non-blocking); return Connections.

    Out of descriptors (EMFILE, ENFILE), ``accept()`` fails but leaves the client waiting: the
    listener would stay readable and the loop would spin until a descriptor is freed. Each
    such client is turned away instead (accepted on the descriptor kept in reserve and closed
    at once; see :mod:`nbio_helpers.limits`), and an ERROR event says so.
    """
    accepted = []
    while True:
        try:
            sock, _ = server.listener.accept()
        except (BlockingIOError, InterruptedError):
            return accepted
        except OSError as exc:
            if exc.errno not in OUT_OF_DESCRIPTORS:
                return accepted   # e.g. ECONNABORTED: that client is gone already
            if not RESERVE.turn_away(server.listener):
                return accepted   # nobody waiting any more (or the reserve was lost)
            server.events.record(ERROR, detail=f"out of descriptors ({errno.errorcode[exc.errno]})"
                                               ": a waiting client was turned away")
            continue
        accepted.append(make(sock, server))
