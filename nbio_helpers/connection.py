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

A Connection never closes its own socket: when it has nothing more to do (:attr:`done`: the
peer closed and every byte was sent, or the peer reset the connection), the loop closes it,
after it stopped watching the socket (``sel.unregister(conn.sock)``, then ``conn.close()``).
"""

from __future__ import annotations

import errno
import selectors
import socket

from .events import EOF, ERROR, PAUSE, RECV, RESUME, SEND, SEND_WOULD_BLOCK, WOULD_BLOCK
from .limits import OUT_OF_DESCRIPTORS, RESERVE, fd_limit


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
        self.id = server.track(sock, self)
        self.outbuf = bytearray()
        self.peer_done = False  # recv() returned b''
        self.closed = False
        self.paused = False  # backpressure in force
        self.why_done = ""  # set when there is nothing more to do: why to close

    @property
    def wants_read(self) -> bool:
        """Read from this socket? Not after EOF, nor while too much output is pending."""
        return not self.done and not self.peer_done and not self.paused

    @property
    def wants_write(self) -> bool:
        """Write to this socket? Only while output is pending."""
        return not self.done and bool(self.outbuf)

    @property
    def done(self) -> bool:
        """True when the loop should close this connection (see :attr:`why_done`)."""
        return self.closed or bool(self.why_done)

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
            self.why_done = f"recv failed: {type(exc).__name__}"
            return
        if not data:
            self.server.events.record(EOF, self.id)
            self.peer_done = True
            self._finish_if_all_sent()
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
            self.why_done = f"send failed: {type(exc).__name__}"
            return
        del self.outbuf[:sent]
        self.server.events.record(SEND, self.id, sent)
        if self.paused and len(self.outbuf) <= self.server.high_water // 2:
            self.paused = False
            self.server.events.record(RESUME, self.id, len(self.outbuf))
        self._finish_if_all_sent()

    def close(self, reason: str | None = None) -> None:
        """Close the socket (once) and record why (default: :attr:`why_done`)."""
        if not self.closed:
            self.closed = True
            self.server.close_connection(self.sock, self.id, reason or self.why_done)

    def _finish_if_all_sent(self) -> None:
        if self.peer_done and not self.outbuf:
            try:
                self.sock.shutdown(socket.SHUT_WR)  # our EOF, after the last byte of reply
            except OSError:
                pass
            self.why_done = "peer closed and every byte was sent"


def close_finished(connections: list) -> list:
    """Close the connections that are :attr:`~Connection.done`; return the others.

    For loops that register nothing with the OS (polling, ``select()``): a loop that keeps a
    selector must unregister a connection before it closes it.
    """
    for conn in connections:
        if conn.done:
            conn.close()
    return [c for c in connections if not c.closed]


def accept_all(server, make=Connection, limit: int | None = None) -> list:
    """Accept every client waiting on ``server.listener`` (non-blocking); return Connections.

    Each socket is owned by ``server`` (:meth:`~nbio_helpers.server.Server.own`) the moment
    ``accept()`` returns it, so that a ``stop()`` that comes next finds it and shuts it down;
    once ``stop()`` has begun, a socket accepted is closed at once and accepting ends.

    ``make(sock, server)`` turns each accepted socket into what is returned (default a
    :class:`Connection`); ``limit`` stops after that many (``limit=1``: one client, or none if
    the one that was waiting has gone already, ECONNABORTED).

    Out of descriptors (EMFILE, ENFILE), ``accept()`` fails but leaves the client waiting: the
    listener would stay readable and the loop would spin until a descriptor is freed. Each
    such client is turned away instead (accepted on the descriptor kept in reserve and closed
    at once; see :mod:`nbio_helpers.limits`), counted in ``server.refusals()``, and an ERROR
    event says so.
    """
    accepted = []
    while limit is None or len(accepted) < limit:
        try:
            sock, _ = server.listener.accept()
        except (BlockingIOError, InterruptedError):
            return accepted
        except OSError as exc:
            if exc.errno not in OUT_OF_DESCRIPTORS:
                return accepted  # e.g. ECONNABORTED: that client is gone already
            if not RESERVE.turn_away(server.listener):
                return accepted  # nobody waiting any more (or the reserve was lost)
            server.count_refusal(out_of_descriptors_reason(exc.errno))
            server.events.record(
                ERROR,
                detail=f"out of descriptors ({errno.errorcode[exc.errno]})"
                ": a waiting client was turned away",
            )
            continue
        if not server.own(sock):  # stop() has begun: no new client, and this one is closed
            server.forget(sock)
            sock.close()
            return accepted
        accepted.append(make(sock, server))
    return accepted


def out_of_descriptors_reason(error: int) -> str:
    """The short reason of a refusal for EMFILE (this process) or ENFILE (the whole system)."""
    if error == errno.EMFILE:
        limit = fd_limit()
        return "out of descriptors" + (f" (ulimit -n {limit})" if limit is not None else "")
    return "the system is out of descriptors (ENFILE)"


def finish_replies(server, connections: list) -> None:
    """A graceful stop, once the loop has returned: send every reply, then close politely.

    No more requests are read. Each connection sends what is left in its ``outbuf``, then its
    EOF (``shutdown(SHUT_WR)``); what the client still sends is read and dropped until its own
    EOF, because closing a socket with unread input resets the connection, and the reset would
    throw away the end of the reply. Each connection is unregistered, then closed, as soon as
    it is finished; the rest are left to ``stop()`` when the grace period ends (it wakes this
    loop through the waker).
    """
    with selectors.DefaultSelector() as sel:
        sel.register(server.waker, selectors.EVENT_READ)
        for conn in connections:
            conn.paused = True  # read no more requests
            if not conn.done and not conn.outbuf:
                _send_eof(conn)
            if conn.done:
                conn.close()  # never registered here
                continue
            sel.register(
                conn.sock, selectors.EVENT_WRITE if conn.outbuf else selectors.EVENT_READ, conn
            )
        while len(sel.get_map()) > 1 and server.in_grace_period:
            left = server.grace_left()
            for key, mask in sel.select(left):
                conn = key.data
                if conn is None:
                    server.drain_waker()
                    continue
                if mask & selectors.EVENT_WRITE:
                    conn.on_writable()
                    if not conn.outbuf and not conn.done:
                        _send_eof(conn)
                        sel.modify(conn.sock, selectors.EVENT_READ, conn)
                elif _drop_input(conn):
                    conn.why_done = "server stopping: every reply sent"
                if conn.done:
                    sel.unregister(conn.sock)
                    conn.close()


def _send_eof(conn: Connection) -> None:
    try:
        conn.sock.shutdown(socket.SHUT_WR)
    except OSError as exc:
        conn.why_done = f"shutdown failed: {type(exc).__name__}"


def _drop_input(conn: Connection) -> bool:
    """Read and drop what the peer sends after the stop; True once it sent its EOF."""
    try:
        return not conn.sock.recv(RECV_DROP)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True  # reset: nothing more to wait for


RECV_DROP = 256 * 1024
