"""The classic polling server: the article's design as a correct loop, and its flaws, one each.

The series grew from the article "Python concurrent programming: non-blocking IO" (Alibaba
Cloud developer community). Its server keeps every socket non-blocking, a list of connected
sockets (``rlist``) asked with ``recv()`` once per round, a list of pending replies
(``wlist``) sent with ``send()``, and removes what is finished after each loop, from lists of
removals (``del_rlist``, ``del_wlist``). This module is our own code with that structure.

:class:`ClassicServer` is the design with its flaws fixed: read it whole with
``show_source(ClassicLoop)``. Each flaw of the article is a subclass that overrides one small
step of the loop, so that the mistake is the line that differs::

    with ClassicServer() as server:                  # the article's design, working
        request(server.address, b"hi")               # -> b"HI"

    with FLAWS["partial_send"](sndbuf=4096) as lossy:   # the same loop, one mistake in it
        echo_payload(lossy.address).intact            # -> False: bytes lost

=======================  ========================  ==========================================
flaw (key of FLAWS)      subclass                  what goes wrong
=======================  ========================  ==========================================
``serves_when_idle``     ServesOnlyWhenIdle        clients are served only in a round where
                                                   nobody arrived: arrivals delay everyone
``blocking_accept``      BlockingAccepted          accepted sockets left blocking (as Linux's
                                                   ``accept()`` returns them): one quiet client
                                                   freezes the loop
``misused_append``       MisusedAppend             ``wlist.append(sock, data)`` raises
                                                   TypeError, a catch-all hides it: nobody is
                                                   answered, and a client that leaves without
                                                   a word is removed twice: ValueError kills
                                                   the loop
``partial_send``         DropsPartialSends         the rest of a partial ``send()`` is dropped
``send_errors_kill``     SendErrorsKill            only BlockingIOError is caught around
                                                   ``send()``: a client that leaves before its
                                                   reply kills the loop
``never_closed``         NeverCloses               a departed client's socket is forgotten,
                                                   never closed: a descriptor held, no EOF
=======================  ========================  ==========================================

The probes below make each flaw happen from a notebook cell, every one bounded in time.
"""

from __future__ import annotations

import dataclasses
import selectors
import socket
import time

from nbio_helpers.addresses import address_family
from nbio_helpers.clients import connect, recv_exactly, stream_echo
from nbio_helpers.events import (
    ACCEPT,
    ACCEPT_WOULD_BLOCK,
    CLOSE,
    EOF,
    ERROR,
    RECV,
    SEND,
    SEND_WOULD_BLOCK,
    WOULD_BLOCK,
)

# ---- what notebook 03 also uses, from where it lives (so the notebook imports from here)
from nbio_helpers.measure import (
    idle_cost,
    latency_stats,
    neighbour_slowdown,
    plot_tradeoff,
    poll_interval_sweep,
    spare_cores,
)
from nbio_helpers.measure.rounds import round_cost_after
from nbio_helpers.nonblocking import attempt
from nbio_helpers.server import Server, wait_until
from nbio_helpers.ui.explorer import PollIntervalExplorer

MAX_INTERVAL = 1.0
"""Longest allowed ``interval``. The loop sleeps with ``time.sleep`` in its own thread, where
nothing can cut the sleep short (signals are handled in the main thread only): ``stop()`` waits
it out."""


# ------------------------------------------------------------------------ the loop
class ClassicLoop:
    """The article's loop, correct. Everything a round does is here, in the order it does it.

    ``rlist``: the clients, each asked ``recv()`` once per round. ``wlist``: the replies still
    to send, as ``[sock, bytes]`` pairs. ``done``: clients that have finished sending, closed
    once their last reply is out. Needs ``listener``, ``stopping``, ``interval`` and ``accept()``
    (see :class:`ClassicServer`).
    """

    def serve(self):
        self.listener.setblocking(False)
        while not self.stopping:
            self.one_round()
            if self.interval:
                time.sleep(self.interval)  # the article's way to spare the CPU

    def one_round(self):
        self.rlist += self.accept_new()  # everyone waiting to connect...
        self.serve_clients()  # ...then every client, every round

    def accept_new(self):
        """Accept every client waiting; return their sockets, ready to be polled."""
        new = []
        while True:
            try:
                new.append(self.accept_one())
            except BlockingIOError:  # nobody (else) is waiting
                return new

    def accept_one(self):
        sock = self.accept()  # BlockingIOError if nobody is waiting
        sock.setblocking(False)  # accept() may return a blocking socket
        return sock

    def serve_clients(self):
        del_rlist = []
        for sock in self.rlist:  # ask every client: anything for me?
            self.read_one(sock, del_rlist)
        self.send_pending(self.wlist)
        for sock in del_rlist:  # removed after the loop, never during it
            self.rlist.remove(sock)
            self.done.append(sock)
        self.close_done()

    def read_one(self, sock, del_rlist):
        try:
            data = sock.recv(1024)
        except BlockingIOError:  # nothing yet: ask again next round
            return
        except OSError:  # reset by the client: it has gone
            data = b""
        if data:
            self.queue_reply(sock, data.upper())
        else:  # b'': it will send nothing more
            del_rlist.append(sock)

    def queue_reply(self, sock, reply):
        for item in self.wlist:  # a reply still pending for this client:
            if item[0] is sock:  # add to it, so the bytes stay in order
                item[1] += reply
                return
        self.wlist.append([sock, reply])

    def send_pending(self, wlist):
        """One ``send()`` per pending ``[sock, data]`` pair; remove the pairs fully sent."""
        del_wlist = []
        for item in wlist:
            self.send_one(item, del_wlist)
        for item in del_wlist:  # removed after the loop, never during it
            wlist.remove(item)

    def send_one(self, item, del_wlist):
        sock, data = item
        try:
            sent = sock.send(data)  # may take only part of data
        except BlockingIOError:  # its send buffer is full: next round
            return
        except OSError:  # the client has gone: drop its reply
            del_wlist.append(item)
            return
        item[1] = data[sent:]  # keep what send() did not take
        if not item[1]:
            del_wlist.append(item)

    def close_done(self):
        pending = [item[0] for item in self.wlist]
        for sock in [s for s in self.done if s not in pending]:
            self.done.remove(sock)  # its last reply is out:
            sock.close()  # close it, and the client sees EOF


# ------------------------------------------------------------------- the machinery
class TracedConn(socket.socket):
    """An accepted socket that records its ``recv()``, ``send()`` and ``close()`` in its
    server's event log (so the loop itself records nothing). Otherwise a plain socket."""

    def __init__(self, fileno: int, server: ClassicServer):
        super().__init__(fileno=fileno)
        self.server = server
        self.cid = server.track(self)

    def _traced(self, call, would_block: str, *args):
        """``call(*args)``; a ``BlockingIOError`` is recorded as ``would_block``, any other
        ``OSError`` as an ERROR naming the call; both are raised again."""
        try:
            return call(*args)
        except BlockingIOError:
            self.server.events.record(would_block, self.cid)
            raise
        except OSError as exc:
            detail = f"{call.__name__}: {type(exc).__name__}"
            self.server.events.record(ERROR, self.cid, detail=detail)
            raise

    def recv(self, bufsize, flags=0):
        data = self._traced(super().recv, WOULD_BLOCK, bufsize, flags)
        self.server.events.record(RECV if data else EOF, self.cid, len(data))
        return data

    def send(self, data, flags=0):
        sent = self._traced(super().send, SEND_WOULD_BLOCK, data, flags)
        partial = f"partial: {sent} of {len(data)}" if sent < len(data) else ""
        self.server.events.record(SEND, self.cid, sent, detail=partial)
        return sent

    def close(self):
        if self.fileno() != -1:
            self.server.forget(self)
            self.server.events.record(CLOSE, self.cid)
        super().close()


class ClassicServer(ClassicLoop, Server):
    """The article's polling server, our code, its flaws fixed. The loop is :class:`ClassicLoop`.

    Parameters
    ----------
    interval:
        Seconds of ``time.sleep`` between rounds (0 = busy polling), as
        :class:`~nbio_helpers.PollingServer`'s. At most :data:`MAX_INTERVAL`.
    sndbuf:
        If set, SO_SNDBUF of every accepted socket (bytes): small buffers make partial sends.
    Other parameters: those of :class:`~nbio_helpers.server.Server`.

    Attributes ``rlist``, ``wlist`` and ``done`` are the loop's own lists: read them to see its
    state; :meth:`open_connections` counts the accepted sockets not closed yet.
    """

    model = "classic"
    concurrent = True
    nonblocking = True
    max_connections = None
    logs_connections = True  # by TracedConn
    buffers_output = True  # wlist: the replies still to send
    backpressure = False  # as the article's: it reads whatever comes, however much is pending
    flaw: str | None = None
    """The key of :data:`FLAWS` this class stands for (None: no flaw)."""
    summary = "the article's design, its flaws fixed"
    """What goes wrong, in one line (for a table in a notebook)."""

    def __init__(self, *args, interval: float = 0.0, sndbuf: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0 <= interval <= MAX_INTERVAL:
            raise ValueError(f"interval must be between 0 and {MAX_INTERVAL} s, not {interval!r}")
        self.interval = interval
        self.sndbuf = sndbuf
        self.rlist: list[socket.socket] = []
        self.wlist: list[list] = []
        self.done: list[socket.socket] = []

    def accept(self) -> TracedConn:
        """``listener.accept()``: the new socket, traced and noted (``stop()`` closes it).

        Raises ``BlockingIOError`` when nobody is waiting, as ``accept()`` does. The socket
        is in the mode the operating system gave it: blocking on Linux, the listener's
        (non-blocking) on macOS and Windows.
        """
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            self.events.record(ACCEPT_WOULD_BLOCK)
            raise
        if self.sndbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
        return TracedConn(sock.detach(), self)  # same descriptor, same mode


# ---------------------------------------------------------------------- the flaws
class ServesOnlyWhenIdle(ClassicServer):
    """The article accepts one client per round, and serves clients only in a round where
    ``accept()`` raised BlockingIOError: while clients keep arriving, nobody is served."""

    flaw = "serves_when_idle"
    summary = "clients served only in rounds where nobody arrived: arrivals delay everyone"

    def one_round(self):
        try:
            self.rlist.append(self.accept_one())  # one newcomer, if any...
        except BlockingIOError:
            self.serve_clients()  # mistake: serving only when nobody came


class BlockingAccepted(ClassicServer):
    """The article never makes an accepted socket non-blocking. On Linux it is blocking, and
    ``recv()`` on a quiet client stops the whole loop. (macOS and Windows pass the listener's
    non-blocking mode on; this class makes the socket blocking there too, as Linux does.)"""

    flaw = "blocking_accept"
    nonblocking = False  # its flaw: accepted sockets left blocking
    summary = "accepted sockets left blocking: one quiet client freezes the loop (Linux)"

    def accept_one(self):
        sock = self.accept()
        sock.setblocking(True)  # mistake: left blocking, as Linux returns it
        return sock


class MisusedAppend(ClassicServer):
    """The article's recv step: ``wlist.append(sock, data)`` raises TypeError (``append()``
    takes one argument), and a catch-all ``except Exception`` hides it by closing the client.
    After ``b''`` the same step removes the client a second time: ValueError ends the loop."""

    flaw = "misused_append"
    summary = (
        "wlist.append(sock, data): a TypeError hidden by a catch-all, so no replies; "
        "a client that leaves silently kills the loop"
    )

    def read_one(self, sock, del_rlist):
        try:
            data = sock.recv(1024)
            if not data:
                del_rlist.append(sock)
            self.wlist.append(sock, data.upper())  # mistake: two arguments -> TypeError
        except BlockingIOError:
            return
        except Exception:  # ...hidden by a catch-all, which
            sock.close()  # closes the client unanswered
            del_rlist.append(sock)  # (after b'': in del_rlist twice)


class DropsPartialSends(ClassicServer):
    """The article ignores what ``send()`` returns and drops the pair: a partial send loses
    the rest of the reply."""

    flaw = "partial_send"
    summary = "the rest of a partial send() is dropped: bytes lost"

    def send_one(self, item, del_wlist):
        sock, data = item
        try:
            sock.send(data)  # mistake: ignores how much it took...
        except BlockingIOError:
            return
        except OSError:
            pass
        del_wlist.append(item)  # ...and drops the rest


class SendErrorsKill(ClassicServer):
    """The article catches only BlockingIOError around ``send()``: a client that has gone
    (BrokenPipeError, ConnectionResetError) kills the loop."""

    flaw = "send_errors_kill"
    summary = "only BlockingIOError caught around send(): a client that leaves kills the loop"

    def send_one(self, item, del_wlist):
        sock, data = item
        try:
            sent = sock.send(data)
        except BlockingIOError:  # mistake: the only error caught
            return
        item[1] = data[sent:]
        if not item[1]:
            del_wlist.append(item)


class NeverCloses(ClassicServer):
    """The article stops polling a client that sent ``b''`` but never closes its socket: the
    client never sees EOF, and the descriptor stays taken."""

    flaw = "never_closed"
    summary = "b'' stops the polling but nobody calls close(): no EOF, a descriptor held"

    def close_done(self):
        self.done.clear()  # mistake: forgotten, never closed


FLAWS = {
    cls.flaw: cls
    for cls in (
        ServesOnlyWhenIdle,
        BlockingAccepted,
        MisusedAppend,
        DropsPartialSends,
        SendErrorsKill,
        NeverCloses,
    )
}
"""Flaw name -> the :class:`ClassicServer` subclass that has that one flaw, in loop order."""


# ------------------------------------------------------------------------ probes
@dataclasses.dataclass
class EchoOutcome:
    """What :func:`echo_payload` saw: bytes sent, bytes echoed back, and whether intact."""

    sent: int
    received: int
    intact: bool

    @property
    def lost(self) -> int:
        """Bytes that never came back."""
        return max(0, self.sent - self.received)


def echo_payload(
    address, nbytes: int = 1 << 20, *, rcvbuf: int = 8192, timeout: float = 3.0, quiet: float = 0.5
) -> EchoOutcome:
    """Send ``nbytes`` of lower-case text, read the echo, count what comes back.

    The client writes as fast as it can and reads only when it cannot write (or has nothing
    left to write), slowly, with a small receive buffer (``rcvbuf``): the echo piles up on the
    server's side, so the server's ``send()`` comes out partial or raises ``BlockingIOError``.
    Stops when the whole echo is back, when nothing more came for ``quiet`` seconds after the
    last byte was sent (the rest is lost), or after ``timeout`` seconds.
    """
    payload = (b"abcdefghijklmnopqrstuvwxyz" * (nbytes // 26 + 1))[:nbytes]
    sent, received = 0, b""
    sock = socket.socket(address_family(address[0]))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect()
        sock.settimeout(timeout)
        sock.connect(address)
        sent, received = stream_echo(
            sock, payload, timeout=timeout, stall=quiet, send_size=65536, read_pause=0.0005
        )
    except OSError:
        pass
    finally:
        sock.close()
    return EchoOutcome(sent, len(received), received == payload.upper())


def is_starved(server, wait: float = 0.5) -> bool:
    """Does one quiet client stop another client from being served?

    Connects a client that sends nothing, waits until the server has accepted it, then sends
    one request from a second client and waits ``wait`` seconds for the reply. True if it did
    not come. Both clients are closed before returning, which lets a frozen loop carry on.
    """
    accepted = server.events.count(ACCEPT)
    with connect(server.address, timeout=wait + 2):
        wait_until(lambda: server.events.count(ACCEPT) > accepted, 2.0)
        time.sleep(0.02)  # let the loop reach recv() on the quiet client (no event to await)
        with connect(server.address, timeout=wait + 2) as active:
            active.sendall(b"anyone there?")
            try:
                recv_exactly(active, 13, timeout=wait)
            except (TimeoutError, ConnectionError):
                return True
            return False


def wait_while_arriving(server, newcomers: int = 10, timeout: float = 3.0) -> float:
    """How long a connected client waits for its reply while ``newcomers`` clients arrive.

    A client connects and is accepted; then ``newcomers`` clients connect at once (all waiting
    in the listener's queue), and the first client sends one request. Returns the seconds its
    reply took (``inf`` if none came within ``timeout``). A loop that serves clients only in
    rounds where nobody arrived needs one round per newcomer first.
    """
    accepted = server.events.count(ACCEPT)
    with connect(server.address, timeout) as client:
        wait_until(lambda: server.events.count(ACCEPT) > accepted, timeout)
        others = [connect(server.address, timeout) for _ in range(newcomers)]
        try:
            start = time.perf_counter()
            client.sendall(b"ping")
            try:
                recv_exactly(client, 4, timeout=timeout)
            except (TimeoutError, ConnectionError):
                return float("inf")
            return time.perf_counter() - start
        finally:
            for sock in others:
                sock.close()


def leave_silently(server, timeout: float = 2.0) -> None:
    """A client connects, is accepted, and closes without sending anything."""
    accepted = server.events.count(ACCEPT)
    with connect(server.address, timeout):
        wait_until(lambda: server.events.count(ACCEPT) > accepted, timeout)


def leave_before_reply(server, nbytes: int = 256 * 1024, timeout: float = 2.0) -> None:
    """A client sends ``nbytes`` and closes without reading: the echo meets a closed peer.

    The server reads 1024 bytes a round and answers each piece; the first piece that reaches
    the closed client makes its system reset the connection, so the server's next ``send()``
    fails (BrokenPipeError or ConnectionResetError). Returns once the server has closed that
    connection or its loop has ended (at most ``timeout`` seconds).
    """
    closed = server.events.count(CLOSE)
    with connect(server.address, timeout) as sock:
        sock.sendall(b"x" * nbytes)
    wait_until(lambda: server.events.count(CLOSE) > closed or not server.running, timeout)


def half_close_sees_eof(address, wait: float = 0.5) -> bool:
    """Send a request, half-close (``shutdown(SHUT_WR)``), read the reply, then wait ``wait``
    seconds for the server's EOF. True if the server closed its end."""
    with connect(address, timeout=wait + 2) as sock:
        sock.sendall(b"bye")
        sock.shutdown(socket.SHUT_WR)
        recv_exactly(sock, 3, timeout=wait + 2)
        sock.settimeout(wait)
        try:
            return sock.recv(1) == b""
        except TimeoutError:
            return False
        except OSError:
            return True


def burst(address, clients: int = 8, timeout: float = 3.0) -> list[float]:
    """``clients`` clients each send one request at the same moment; returns how long each
    waited for its reply (seconds, sorted; ``inf`` for a reply that never came).

    Against a sleeping server all the requests arrive in one round, so all the replies are
    pending at once: a ``send_pending`` that skips list items answers them over several rounds.
    """
    socks = [connect(address, timeout) for _ in range(clients)]
    sel = selectors.DefaultSelector()
    got = dict.fromkeys(socks, b"")
    delays: dict[socket.socket, float] = {}
    try:
        start = time.perf_counter()
        for sock in socks:
            sock.sendall(b"ping")
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ, sock)
        while len(delays) < clients and time.perf_counter() - start < timeout:
            for key, _ in sel.select(0.05):
                sock = key.data
                chunk = attempt(sock.recv, 4 - len(got[sock]))
                if chunk is None:  # readiness is a hint: wait for the next report
                    continue
                got[sock] += chunk
                if not chunk or len(got[sock]) == 4:
                    sel.unregister(sock)
                    delays[sock] = time.perf_counter() - start if chunk else float("inf")
        return sorted(delays.get(sock, float("inf")) for sock in socks)
    finally:
        sel.close()
        for sock in socks:
            sock.close()


def send_rounds(events) -> int:
    """In how many rounds of the loop did replies go out? (From a server's event log.)

    :class:`ClassicServer` records one ``ACCEPT_WOULD_BLOCK`` per round (its ``accept_new``
    ends on one); each ``SEND`` belongs to the round it follows. Count once the server has
    stopped: a ``SEND`` is recorded just after its bytes left, so a client may have its reply
    before the log has the send.
    """
    if hasattr(events, "events"):
        events = events.events()
    rounds, current = set(), 0
    for event in events:
        if event.kind == ACCEPT_WOULD_BLOCK:
            current += 1
        elif event.kind == SEND:
            rounds.add(current)
    return len(rounds)


__all__ = [
    "FLAWS",
    "MAX_INTERVAL",
    "BlockingAccepted",
    "ClassicLoop",
    "ClassicServer",
    "DropsPartialSends",
    "EchoOutcome",
    "MisusedAppend",
    "NeverCloses",
    "PollIntervalExplorer",
    "SendErrorsKill",
    "ServesOnlyWhenIdle",
    "TracedConn",
    "burst",
    "echo_payload",
    "half_close_sees_eof",
    "idle_cost",
    "is_starved",
    "latency_stats",
    "leave_before_reply",
    "leave_silently",
    "neighbour_slowdown",
    "plot_tradeoff",
    "poll_interval_sweep",
    "round_cost_after",
    "send_rounds",
    "spare_cores",
    "wait_while_arriving",
]
