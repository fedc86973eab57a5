"""The socket shim of the non-blocking models (polling, select, selectors).

A :class:`Connection` owns one non-blocking socket. What the bytes mean, the reply waiting to
be sent and when to stop reading live in its :class:`~nbio_helpers.protocol.EchoProtocol`,
which has no socket; the Connection does the ``recv()`` and ``send()`` calls, records what
happens in the event log, and closes. The models differ only in *when* they call
:meth:`Connection.on_readable` and :meth:`Connection.on_writable` (always, after ``select()``
said so, after ``epoll`` said so); what happens then is here, written once:

* ``recv()`` may raise ``BlockingIOError`` (no data yet): recorded, nothing else happens;
* ``recv()`` returning ``b''`` means the peer will send no more: finish sending, then close;
* the reply waits in the protocol's output buffer; ``send()`` may take only part of it (a
  *partial send*): the rest stays there for the next time the socket is writable;
* backpressure: once more than ``high_water`` bytes are pending, :attr:`wants_read` is
  False, so the loop stops reading this client until the buffer has drained to
  ``low_water`` (a quarter of ``high_water`` by default, as in asyncio).

A Connection never closes its own socket: when it has nothing more to do (:attr:`done`: the
peer closed and every byte was sent, or the peer reset the connection), the loop closes it,
after it stopped watching the socket (``sel.unregister(conn.sock)``, then ``conn.close()``).

A Connection knows nothing of the server: :func:`echo_connection` (the default of
:func:`accept_all`) builds one from a server's settings.
"""

from __future__ import annotations

import errno
import selectors
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from nbio_helpers.events import (
    EOF,
    ERROR,
    PAUSE,
    RECV,
    RESUME,
    SEND,
    SEND_WOULD_BLOCK,
    WOULD_BLOCK,
    EventLog,
)
from nbio_helpers.limits import OUT_OF_DESCRIPTORS, descriptor_reserve, fd_limit
from nbio_helpers.protocol import PAUSED, RESUMED, EchoProtocol, echo_upper

if TYPE_CHECKING:
    from nbio_helpers.server import Server

__all__ = [
    "RECV_DROP",
    "RECV_SIZE",
    "Connection",
    "accept_all",
    "close_finished",
    "echo_connection",
    "echo_upper",
    "finish_replies",
    "out_of_descriptors_reason",
]

RECV_SIZE = 64 * 1024
"""How many bytes one ``recv()`` asks for, unless told otherwise."""

Track = Callable[[socket.socket, object], int]
"""``track(sock, owner) -> connection id``: note an accepted socket (``Server.track``)."""

Close = Callable[[socket.socket, int, str], None]
"""``close(sock, conn_id, reason)``: close it and record why (``Server.close_connection``)."""


class Connection:
    """One accepted, non-blocking socket of an echo server, driving its protocol.

    Parameters
    ----------
    sock:
        The accepted socket; made non-blocking here.
    protocol:
        The connection's sans-IO state (output buffer, water marks, EOF).
    events:
        The event log to record in.
    track:
        Called once, ``track(sock, self)``: notes the socket (so that a stop closes it) and
        returns the connection's id in the event log.
    close:
        ``close(sock, id, reason)`` closes the socket and records why.
    recv_size:
        How many bytes one ``recv()`` asks for.
    """

    def __init__(
        self,
        sock: socket.socket,
        protocol: EchoProtocol,
        events: EventLog,
        *,
        track: Track,
        close: Close,
        recv_size: int = RECV_SIZE,
    ) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.protocol = protocol
        self.events = events
        self.recv_size = recv_size
        self._close = close
        self.closed = False
        self.why_done = ""  # set when there is nothing more to do: why to close
        self.id = track(sock, self)

    @property
    def wants_read(self) -> bool:
        """Read from this socket? Not after EOF, nor while too much output is pending."""
        return not self.done and not self.protocol.peer_done and not self.protocol.paused

    @property
    def wants_write(self) -> bool:
        """Write to this socket? Only while output is pending."""
        return not self.done and self.protocol.pending > 0

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
            data = self.sock.recv(self.recv_size)
        except BlockingIOError:
            self.events.record(WOULD_BLOCK, self.id)
            return
        except OSError as exc:  # reset by peer, etc.
            self.why_done = f"recv failed: {type(exc).__name__}"
            return
        if not data:
            self.events.record(EOF, self.id)
        else:
            self.events.record(RECV, self.id, len(data))
        if self.protocol.receive_data(data) is PAUSED:  # too much output pending
            self.events.record(PAUSE, self.id, self.protocol.pending)
        self._finish_if_all_sent()

    def on_writable(self) -> None:
        """Try one ``send()`` of the pending output; keep whatever it did not take."""
        try:
            sent = self.sock.send(self.protocol.data_to_send())
        except BlockingIOError:
            self.events.record(SEND_WOULD_BLOCK, self.id)
            return
        except OSError as exc:  # broken pipe, reset by peer
            self.why_done = f"send failed: {type(exc).__name__}"
            return
        self.events.record(SEND, self.id, sent)
        if self.protocol.data_sent(sent) is RESUMED:  # drained to the low-water mark
            self.events.record(RESUME, self.id, self.protocol.pending)
        self._finish_if_all_sent()

    def close(self, reason: str | None = None) -> None:
        """Close the socket (once) and record why (default: :attr:`why_done`)."""
        if not self.closed:
            self.closed = True
            self._close(self.sock, self.id, reason or self.why_done)

    def _finish_if_all_sent(self) -> None:
        if self.protocol.finished:
            try:
                self.sock.shutdown(socket.SHUT_WR)  # our EOF, after the last byte of reply
            except OSError:
                pass
            self.why_done = "peer closed and every byte was sent"


def echo_connection(sock: socket.socket, server: Server) -> Connection:
    """A :class:`Connection` for ``sock``, with ``server``'s settings: its water marks,
    ``recv_size`` and event log; tracked by it, and closed through it."""
    protocol = EchoProtocol(server.high_water, server.low_water)
    return Connection(
        sock,
        protocol,
        server.events,
        track=server.track,
        close=server.close_connection,
        recv_size=server.recv_size,
    )


def close_finished(connections: Iterable[Connection]) -> list[Connection]:
    """Close the connections that are :attr:`~Connection.done`; return the others.

    For loops that register nothing with the OS (polling, ``select()``, which is handed the
    returned list from then on): a loop that keeps a selector must unregister a connection
    before it closes it.
    """
    connections = list(connections)
    for conn in connections:
        if conn.done:
            conn.close()
    return [c for c in connections if not c.closed]


T = TypeVar("T")


@overload
def accept_all(server: Server, *, limit: int | None = None) -> list[Connection]: ...
@overload
def accept_all(
    server: Server, make: Callable[[socket.socket, Server], T], limit: int | None = None
) -> list[T]: ...
def accept_all(
    server: Server,
    make: Callable[[socket.socket, Server], Any] = echo_connection,
    limit: int | None = None,
) -> list[Any]:
    """Accept every client waiting on ``server.listener`` (non-blocking); return Connections.

    Each socket is owned by ``server`` (:meth:`~nbio_helpers.server.Server.own`) the moment
    ``accept()`` returns it, so that a ``stop()`` that comes next finds it and shuts it down;
    once ``stop()`` has begun, a socket accepted is closed at once and accepting ends.

        ``make(sock, server)`` turns each accepted socket into what is returned (default
    :func:`echo_connection`: a :class:`Connection`); ``limit`` stops after that many
    (``limit=1``: one client, or none if the one that was waiting has gone already,
    ECONNABORTED).

    Out of descriptors (EMFILE, ENFILE), ``accept()`` fails but leaves the client waiting: the
    listener would stay readable and the loop would spin until a descriptor is freed. Each
    such client is turned away instead (accepted on the descriptor kept in reserve and closed
    at once; see :mod:`nbio_helpers.limits`), counted in ``server.refusals()``, and an ERROR
    event says so.
    """
    listener = server.listener
    assert listener is not None, "accept_all() needs a started server"
    accepted: list[Any] = []
    while limit is None or len(accepted) < limit:
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return accepted
        except OSError as exc:
            if exc.errno not in OUT_OF_DESCRIPTORS:
                return accepted  # e.g. ECONNABORTED: that client is gone already
            if not descriptor_reserve().turn_away(listener):
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


def finish_replies(server: Server, connections: Iterable[Connection]) -> None:
    """A graceful stop, once the loop has returned: send every reply, then close politely.

    No more requests are read. Each connection sends the reply still pending, then its
    EOF (``shutdown(SHUT_WR)``); what the client still sends is read and dropped until its own
    EOF, because closing a socket with unread input resets the connection, and the reset would
    throw away the end of the reply. Each connection is unregistered, then closed, as soon as
    it is finished; the rest are left to ``stop()`` when the grace period ends (it wakes this
    loop through the waker).
    """
    with selectors.DefaultSelector() as sel:
        sel.register(server.waker, selectors.EVENT_READ)
        for conn in connections:
            if not conn.done and not conn.protocol.pending:
                _send_eof(conn)
            if conn.done:
                conn.close()  # never registered here
                continue
            sel.register(
                conn.sock,
                selectors.EVENT_WRITE if conn.protocol.pending else selectors.EVENT_READ,
                conn,
            )
        while len(sel.get_map()) > 1 and server.in_grace_period:
            left = server.grace_left()
            for key, mask in sel.select(left):
                conn = key.data
                if not isinstance(conn, Connection):  # the waker
                    server.drain_waker()
                    continue
                if mask & selectors.EVENT_WRITE:
                    conn.on_writable()
                    if not conn.protocol.pending and not conn.done:
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
