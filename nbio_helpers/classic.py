"""The classic polling server, with its flaws kept on purpose, and the probes that expose them.

This is our own version of the design in the article the series grew from: one non-blocking
listener, a list of connections polled with ``recv()`` (``rlist``), a list of pending
``[sock, reply]`` pairs (``wlist``), and a ``time.sleep`` between rounds. Its five flaws are
switched on by default; fix them one at a time with ``fix``::

    server = ClassicPollingServer(fix={"misused_append"}).start()   # four flaws left
    server = ClassicPollingServer(fix="all").start()                # a correct server
    server = ClassicPollingServer(fix=all_but("partial_send")).start()  # just that flaw

=====================  ==================================================================
flaw                   what goes wrong
=====================  ==================================================================
``misused_append``     ``wlist.append(sock, data)``: a TypeError, swallowed by a broad
                       ``except`` that closes the client: nobody ever gets a reply
``partial_send``       a reply that ``send()`` took only part of is dropped: bytes lost
``blocking_accept``    the accepted socket is blocking (what Linux's ``accept()`` returns):
                       one quiet client freezes the whole loop
``mutating_lists``     items removed from a list while iterating over it: the next item is
                       skipped, so replies wait extra rounds
``closed_not_cleaned`` ``recv()`` returning ``b''`` is ignored: a departed client is polled
                       every round, never closed, never told EOF
=====================  ==================================================================

The probes (:func:`echo_payload`, :func:`is_starved`, :func:`burst`, :func:`half_close_sees_eof`)
make each flaw happen from a notebook cell, safely: every one has a timeout.
"""
from __future__ import annotations

import dataclasses
import selectors
import socket
import time

from .clients import connect, recv_exactly
from .events import ACCEPT, ACCEPT_WOULD_BLOCK, EOF, ERROR, RECV, SEND, WAKEUP, WOULD_BLOCK
from .server import Server, shutdown_quietly, wait_until

FLAWS = {
    "misused_append": "wlist.append(sock, data): TypeError, hidden by a broad except",
    "partial_send": "the rest of a partial send() is dropped: bytes lost",
    "blocking_accept": "accepted sockets are blocking: one quiet client freezes everyone",
    "mutating_lists": "lists changed while iterated: items skipped, replies delayed",
    "closed_not_cleaned": "recv() == b'' ignored: dead connections polled forever, never closed",
}
"""Flaw name -> what it does. Pass names to ``ClassicPollingServer(fix=...)`` to fix them."""

def all_but(*flaws: str) -> set[str]:
    """The ``fix`` argument that fixes every flaw except ``flaws``: to show one at a time.

    >>> sorted(all_but("partial_send"))
    ['blocking_accept', 'closed_not_cleaned', 'misused_append', 'mutating_lists']
    """
    unknown = set(flaws) - set(FLAWS)
    if unknown:
        raise ValueError(f"unknown flaw(s) {sorted(unknown)}; choose from {sorted(FLAWS)}")
    return set(FLAWS) - set(flaws)


MAX_PAUSE = 1.0
"""Longest allowed pause: ``time.sleep`` cannot be interrupted, so ``stop()`` waits it out."""


class ClassicPollingServer(Server):
    """The article's polling server, in our words, with switchable flaws.

    Parameters
    ----------
    fix:
        Flaw names (keys of :data:`FLAWS`) to fix, or ``"all"``. Default: none fixed.
    pause:
        Seconds of ``time.sleep`` between rounds (0 = busy polling). At most 1 s.
    sndbuf:
        If set, SO_SNDBUF of every accepted socket: small buffers make partial sends likely.
    recv_size:
        Bytes asked of each ``recv()``; 1024 as in the article.

    Attributes ``rlist`` (sockets polled with ``recv()``) and ``wlist`` (pending
    ``[sock, reply]`` pairs) are the loop's own lists: read them to see its state.
    """

    model = "classic"

    def __init__(self, *args, fix=(), pause: float = 0.0, sndbuf: int | None = None,
                 recv_size: int = 1024, **kwargs):
        super().__init__(*args, recv_size=recv_size, **kwargs)
        fix = set(FLAWS) if fix == "all" else set([fix] if isinstance(fix, str) else fix)
        unknown = fix - set(FLAWS)
        if unknown:
            raise ValueError(f"unknown flaw(s) {sorted(unknown)}; choose from {sorted(FLAWS)}")
        if not 0 <= pause <= MAX_PAUSE:
            raise ValueError(f"pause must be between 0 and {MAX_PAUSE} s, not {pause!r}")
        self.fix = frozenset(fix)
        self.pause = pause
        self.sndbuf = sndbuf
        self.rlist: list[socket.socket] = []
        self.wlist: list[list] = []
        self.finishing: set[socket.socket] = set()   # read to the end; close once replied
        self.ids: dict[socket.socket, int] = {}

    @property
    def flaws(self) -> list[str]:
        """The flaws still switched on, in the order of :data:`FLAWS`."""
        return [name for name in FLAWS if name not in self.fix]

    def flawed(self, name: str) -> bool:
        return name not in self.fix

    # ----------------------------------------------------------------------- the loop
    def serve(self) -> None:
        self.listener.setblocking(False)
        while not self.stopping:
            self.rlist += self.accept_new()
            self.poll_reads()
            self.send_pending(self.wlist)
            self.close_finished()
            if self.pause:
                time.sleep(self.pause)          # the article's way to spare the CPU
                self.events.record(WAKEUP)

    def accept_new(self) -> list[socket.socket]:
        """Accept every waiting client; return the new sockets."""
        new = []
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:             # nobody (else) is waiting
                self.events.record(ACCEPT_WOULD_BLOCK)
                return new
            if self.flawed("blocking_accept"):
                sock.setblocking(True)          # flaw: left as Linux returns it (other OSes
            else:                               # inherit non-blocking; we show Linux's case)
                sock.setblocking(False)         # fix
            if self.sndbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
            self.ids[sock] = self.track(sock)
            new.append(sock)

    def poll_reads(self) -> None:
        """One ``recv()`` on every socket in ``rlist``; queue the replies in ``wlist``."""
        rlist = self.rlist
        for sock in (rlist if self.flawed("mutating_lists") else rlist[:]):   # fix: a copy
            cid = self.ids.get(sock)
            try:
                data = sock.recv(self.recv_size)
            except BlockingIOError:
                self.events.record(WOULD_BLOCK, cid)
                continue
            except OSError:                     # reset by the peer: same as a goodbye
                data = b""
            if not data:
                self.events.record(EOF, cid)
                if self.flawed("closed_not_cleaned"):
                    continue                    # flaw: polled again next round, forever
                rlist.remove(sock)
                self.finishing.add(sock)        # fix: close it once its replies are sent
                continue
            self.events.record(RECV, cid, len(data))
            try:
                self.queue_reply(sock, data.upper())
            except Exception as exc:            # the article's catch-all hides any bug...
                self.events.record(ERROR, cid, detail=f"{type(exc).__name__}: {exc}")
                rlist.remove(sock)
                self.close_connection(sock, self.ids.pop(sock, None),
                                      "closed by the catch-all except")

    def queue_reply(self, sock: socket.socket, reply: bytes) -> None:
        """Add ``reply`` to ``wlist``: one pending pair per socket keeps the bytes in order."""
        if self.flawed("misused_append"):
            self.wlist.append(sock, reply)      # flaw: TypeError, append() takes one argument
        for item in self.wlist:
            if item[0] is sock:
                item[1] += reply
                return
        self.wlist.append([sock, reply])        # fix: one argument, a [sock, reply] pair

    def send_pending(self, wlist: list) -> None:
        """One ``send()`` per pending ``[sock, reply]`` pair; remove the pairs fully sent."""
        for item in (wlist if self.flawed("mutating_lists") else wlist[:]):  # fix: a copy
            sock, data = item
            try:
                sent = sock.send(data)
            except BlockingIOError:             # its send buffer is full: next round
                continue
            except OSError:                     # the client is gone
                wlist.remove(item)
                continue
            partial = f"partial: {sent} of {len(data)}" if sent < len(data) else ""
            self.events.record(SEND, self.ids.get(sock), sent, detail=partial)
            if sent < len(data) and not self.flawed("partial_send"):
                item[1] = data[sent:]           # fix: keep the rest for the next round
                continue
            wlist.remove(item)                  # flaw if sent < len(data): the rest is lost

    def close_finished(self) -> None:
        """Close the sockets that said goodbye and have nothing left to send."""
        pending = {item[0] for item in self.wlist}
        for sock in [s for s in self.finishing if s not in pending]:
            self.finishing.discard(sock)
            shutdown_quietly(sock)              # our EOF, after their last reply
            self.close_connection(sock, self.ids.pop(sock, None), "peer closed, replies sent")

    def on_stop(self) -> None:
        # Wake a loop stuck in a blocking recv()/send() on a quiet client (the blocking flaw).
        with self._open_lock:
            socks = list(self._open)
        for sock in socks:
            shutdown_quietly(sock)


# ------------------------------------------------------------------------------ probes
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


def echo_payload(address, nbytes: int = 1 << 20, *, rcvbuf: int = 8192, timeout: float = 3.0,
                 quiet: float = 0.5) -> EchoOutcome:
    """Send ``nbytes`` of lower-case text, read the echo, count what comes back.

    The client writes as fast as it can and reads only when it cannot write (or has nothing
    left to write), slowly, with a small receive buffer (``rcvbuf``): the echo piles up on the
    server's side, so the server's ``send()`` comes out partial or raises ``BlockingIOError``.
    Stops when the whole echo is back, when nothing more came for ``quiet`` seconds after the
    last byte was sent (the rest is lost), or after ``timeout`` seconds.
    """
    payload = (b"abcdefghijklmnopqrstuvwxyz" * (nbytes // 26 + 1))[:nbytes]
    expected = payload.upper()
    received = bytearray()
    out = memoryview(payload)
    sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sel = selectors.DefaultSelector()
    try:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        deadline = time.monotonic() + timeout
        last_progress = time.monotonic()
        while len(received) < nbytes and time.monotonic() < deadline:
            if not out and time.monotonic() - last_progress > quiet:
                break                           # all sent, and the echo has stopped coming
            for _, mask in sel.select(0.05):
                if mask & selectors.EVENT_WRITE and out:
                    try:
                        out = out[sock.send(out[:65536]):]
                        last_progress = time.monotonic()
                        if out:
                            continue            # could write: write more before reading
                        sel.modify(sock, selectors.EVENT_READ)
                    except BlockingIOError:
                        pass                    # cannot write now: read instead
                if mask & selectors.EVENT_READ:
                    try:
                        chunk = sock.recv(65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        break
                    received += chunk
                    last_progress = time.monotonic()
                    time.sleep(0.0005)          # a slowish reader: the server's buffer fills
            else:
                continue
            break                               # the server closed the connection
    except OSError:
        pass                                    # reset by the server: count what came
    finally:
        sel.close()
        sock.close()
    return EchoOutcome(nbytes - len(out), len(received), bytes(received) == expected)


def is_starved(server, wait: float = 0.5) -> bool:
    """Does one quiet client stop another client from being served?

    Connects a client that sends nothing, waits until the server has accepted it, then
    sends one request from a second client and waits ``wait`` seconds for the reply.
    Returns True if the reply did not come (the active client was starved). Both clients are
    closed before returning, which lets a frozen server carry on.
    """
    accepted = server.events.count(ACCEPT)
    with connect(server.address, timeout=wait + 2) as quiet:
        wait_until(lambda: server.events.count(ACCEPT) > accepted, 2.0)
        time.sleep(0.02)  # let the loop reach recv() on the quiet client (no event to await)
        with connect(server.address, timeout=wait + 2) as active:
            active.sendall(b"anyone there?")
            try:
                recv_exactly(active, 13, timeout=wait)
            except (TimeoutError, ConnectionError):
                return True
            return False


def burst(address, clients: int = 8, timeout: float = 3.0) -> list[float]:
    """``clients`` clients each send one request at the same moment; returns how long each
    waited for its reply (seconds, sorted; ``inf`` for a reply that never came).

    Against a sleeping server all the requests arrive in one round, so all the replies are
    pending at once: a loop that skips list items answers them over several rounds.
    """
    socks = [connect(address, timeout) for _ in range(clients)]
    sel = selectors.DefaultSelector()
    got = {sock: b"" for sock in socks}
    delays = {}
    try:
        start = time.perf_counter()
        for sock in socks:
            sock.sendall(b"ping")
            sel.register(sock, selectors.EVENT_READ)
        while len(delays) < clients and time.perf_counter() - start < timeout:
            for key, _ in sel.select(0.05):     # every client waits at once: arrival times
                sock = key.fileobj
                chunk = sock.recv(4 - len(got[sock]))
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

    The classic loop records one ``ACCEPT_WOULD_BLOCK`` per round; each ``SEND`` belongs to
    the round it follows. A loop that skips list items needs several rounds for a burst.
    Count once the server has stopped: a ``SEND`` is recorded just after its bytes left,
    so a client may have its reply before the log has the send.
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


def half_close_sees_eof(address, wait: float = 0.5) -> bool:
    """Send a request, half-close (``shutdown(SHUT_WR)``: "I am done sending"), read the
    reply, then wait ``wait`` seconds for the server's EOF. True if the server closed its end.
    """
    with connect(address, timeout=wait + 2) as sock:
        sock.sendall(b"bye")
        sock.shutdown(socket.SHUT_WR)
        recv_exactly(sock, 3, timeout=wait + 2)
        sock.settimeout(wait)
        try:
            return sock.recv(1) == b""
        except (TimeoutError, socket.timeout):
            return False
        except OSError:                         # reset: closed too, if rudely
            return True


__all__ = ["FLAWS", "MAX_PAUSE", "ClassicPollingServer", "EchoOutcome", "all_but", "burst",
           "echo_payload", "half_close_sees_eof", "is_starved", "send_rounds"]
