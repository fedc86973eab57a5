"""The live demonstrations of notebook 04 (select), each bounded and safe to re-run.

* :class:`AlwaysWritableSelectServer` — the mistake of many tutorials: asking ``select()`` for
  write readiness on every socket. An idle socket is always writable, so the loop never sleeps.
  :func:`nbio_helpers.measure.idle_cost` shows it (CPU share and wake-ups per second with
  idle clients).
* :class:`HeartbeatSelectServer` — ``select()``'s timeout used for periodic work.
* :func:`partial_send_report` — an 8 MiB echo through small socket buffers, with the partial
  sends counted from the event log (:func:`count_partial_sends`).
* :func:`two_acceptors` and :func:`reset_before_accept` — readiness is a hint: two threads
  told "readable" for one client (one gets it, one gets ``BlockingIOError``); a client that
  resets before ``accept()`` (what each OS does then).
* :func:`select_cost_by_descriptor` — what one ``select()`` costs: a high descriptor number a
  little, many sockets a lot.
* :func:`select_on_high_descriptor` and :func:`high_descriptor_client` — the FD_SETSIZE limit:
  ``select()`` refuses a descriptor >= 1024 (POSIX), and the select server refuses such a
  client while it keeps serving the others.

Usage::

    from nbio_helpers.measure import idle_cost
    from nbio_helpers.lessons.nb04 import AlwaysWritableSelectServer
    with AlwaysWritableSelectServer() as server:
        idle_cost(server, clients=10, seconds=0.5)   # cpu ≈ 1.0, rounds_per_second ≈ 100,000

The comparison of the models is :func:`nbio_helpers.measure.compare` (with
:func:`~nbio_helpers.measure.comparison_table` and :func:`~nbio_helpers.measure.plot_comparison`),
and the idle cost :func:`nbio_helpers.measure.idle_cost`: this module keeps no aliases of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import math
import os
import select
import socket
import statistics
import sys
import threading
import time
from collections.abc import Iterable

from nbio_helpers.clients import close_with_reset, connect, recv_exactly, request, run_load
from nbio_helpers.connection import Connection, accept_all, close_finished
from nbio_helpers.events import ACCEPT, CLOSE, RECV, SEND, WAKEUP
from nbio_helpers.limits import fd_limit_raised

# ---- what notebook 04 also uses, from where it lives (so the notebook imports from here)
from nbio_helpers.measure import (
    compare,
    comparison_relations,
    comparison_table,
    idle_cost,
    plot_comparison,
    print_relations,
    spare_cores,
)
from nbio_helpers.models import MODELS
from nbio_helpers.models.select_model import FD_SETSIZE, WINDOWS_SELECT_LIMIT, SelectServer
from nbio_helpers.server import wait_until

MiB = 1024 * 1024


# --------------------------------------------------------------------------- select loops
# Deliberate teaching copy: the body of SelectServer.serve, which notebook 04 shows inline
# (the loop is the lesson); the variants below share it, so that each shows only its change.
def serve_ready(server: SelectServer, readable: list, writable: list, connections: list) -> list:
    """Serve what ``select()`` reported ready, exactly as :class:`SelectServer` does.

    Returns the connections still open (accepted ones added, closed ones dropped).
    """
    for ready in readable:
        if ready is server.listener:
            for conn in accept_all(server):  # a burst: each one counted as it joins
                if server.fits_in_select(conn, connections):
                    connections.append(conn)
        elif ready is server.waker:
            server.drain_waker()
        else:
            ready.on_readable()
    for ready in writable:
        if ready.wants_write:  # only try to send what is pending
            ready.on_writable()
    return close_finished(connections)


class AlwaysWritableSelectServer(SelectServer):
    """The tutorial mistake: every open connection goes into ``wlist``, pending output or not.

    A socket with room in its send buffer is *writable*, and an idle socket always has room:
    ``select()`` returns at once, every time, and the loop spins at a full core.
    """

    model = "select-always-write"
    waits_for_readiness = False  # its flaw: select() returns at once, every time

    def serve(self) -> None:
        self.listener.setblocking(False)
        connections: list[Connection] = []
        while not self.stopping:
            rlist = [self.listener, self.waker] + [c for c in connections if c.wants_read]
            wlist = [c for c in connections if not c.closed]  # the mistake
            readable, writable, _ = select.select(rlist, wlist, [])
            self.events.record(WAKEUP, nbytes=len(readable) + len(writable))
            connections = serve_ready(self, readable, writable, connections)


class HeartbeatSelectServer(SelectServer):
    """A select server that also does periodic work: ``beats`` grows every ``every`` seconds.

    ``select()``'s last argument is a timeout: the loop sleeps until a socket is ready *or*
    the next beat is due, whichever comes first, so no thread and no busy loop is needed.
    """

    model = "select-heartbeat"

    def __init__(self, *args, every: float = 0.05, **kwargs):
        super().__init__(*args, **kwargs)
        if every <= 0:
            raise ValueError(f"every must be > 0 seconds, not {every!r}")
        self.every = every
        self.beats = 0

    def serve(self) -> None:
        self.listener.setblocking(False)
        connections: list[Connection] = []
        next_beat = time.monotonic() + self.every
        while not self.stopping:
            rlist = [self.listener, self.waker] + [c for c in connections if c.wants_read]
            wlist = [c for c in connections if c.wants_write]
            timeout = max(0.0, next_beat - time.monotonic())
            readable, writable, _ = select.select(rlist, wlist, [], timeout)
            self.events.record(WAKEUP, nbytes=len(readable) + len(writable))
            if time.monotonic() >= next_beat:  # the periodic work
                self.beats += 1
                next_beat += self.every
            connections = serve_ready(self, readable, writable, connections)


# --------------------------------------------------------------------------- partial sends
def count_partial_sends(events: Iterable) -> int:
    """How many ``send()`` calls took less than the output pending at that moment.

    Rebuilds each connection's pending output from the log: a ``recv`` of n bytes queues an
    n-byte echo, a ``send`` of n bytes removes n. Needs no socket (test it with plain events).
    """
    pending: dict = {}
    partial = 0
    for event in events:
        if event.kind == RECV:
            pending[event.conn] = pending.get(event.conn, 0) + event.nbytes
        elif event.kind == SEND:
            before = pending.get(event.conn, 0)
            if event.nbytes < before:
                partial += 1
            pending[event.conn] = before - event.nbytes
    return partial


@dataclasses.dataclass
class PartialSendReport:
    """One big echo through a select server, counted from its event log."""

    ok: bool  # the echo came back byte for byte
    payload: int  # bytes sent (and expected back)
    recv_calls: int
    send_calls: int
    partial_sends: int
    would_block: int  # send() raised BlockingIOError although select() said writable
    pauses: int  # backpressure: reading stopped while too much output was pending


def partial_send_report(
    payload: int = 8 * MiB, sndbuf: int = 16 * 1024, timeout: float = 10.0
) -> PartialSendReport:
    """Echo ``payload`` random bytes through a :class:`SelectServer` whose sockets have a
    small send buffer (``SO_SNDBUF`` set on the listener is inherited by accepted sockets).
    """
    with SelectServer(name="partial-sends") as server:
        server.listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        result = run_load(server.address, clients=1, messages=1, size=payload, timeout=timeout)
        wait_until(lambda: server.events.count(CLOSE) >= 1, timeout=2.0)
        log = server.events
        return PartialSendReport(
            ok=result.ok,
            payload=payload,
            recv_calls=log.count(RECV),
            send_calls=log.count(SEND),
            partial_sends=count_partial_sends(log.events()),
            would_block=log.count("send_would_block"),
            pauses=log.count("pause"),
        )


# --------------------------------------------------------------------------- readiness is a hint
ONE_WINS = ["accept() got the client", "accept() raised BlockingIOError"]
"""What :func:`two_acceptors` returns: one client, two threads acting on one answer."""


def two_acceptors(timeout: float = 5.0) -> list[str]:
    """Two threads wait in ``select()`` on one non-blocking listener; one client connects.
    Both are told "readable"; only then (they wait for each other) does each call
    ``accept()``.

    Returns the two outcomes, sorted: :data:`ONE_WINS`, every time (``select()`` is
    level-triggered: a thread that looks after the client arrived is told readable too).
    Bounded by ``timeout``; every socket is closed and both threads are joined.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)  # so that the loser gets BlockingIOError, not a hang
    both_told = threading.Barrier(2, timeout=timeout)
    outcomes = {}

    def acceptor(name: str) -> None:
        readable, _, _ = select.select([listener], [], [], timeout)
        outcomes[name] = "told readable" if readable else "select() timed out"
        try:
            both_told.wait()  # both have their answer before either acts on it
        except threading.BrokenBarrierError:
            return
        try:
            client, _ = listener.accept()
        except BlockingIOError:
            outcomes[name] = "accept() raised BlockingIOError"
        else:
            outcomes[name] = "accept() got the client"
            client.close()

    threads = [
        threading.Thread(target=acceptor, args=(name,), name=f"nbio-acceptor-{name}", daemon=True)
        for name in ("A", "B")
    ]
    client = None
    try:
        for thread in threads:
            thread.start()
        client = socket.create_connection(listener.getsockname(), timeout=timeout)
        for thread in threads:
            thread.join(timeout + 1)
    finally:
        both_told.abort()  # frees a thread still waiting, if anything failed
        for thread in threads:
            thread.join(1.0)
        if client is not None:
            client.close()
        listener.close()
    return sorted(outcomes.values())


@dataclasses.dataclass
class ResetBeforeAccept:
    """What happened to a client that connected, then reset, before the server's ``accept()``.

    Each outcome is ``"returned a socket"``, ``"b''"``, ``"data"`` or the name of the
    exception raised (the type only: its text differs by OS).
    """

    selected: bool  # select() reported the listener readable (a client was waiting)
    accept: str  # what accept() did then
    first_recv: str  # what the first recv() on the accepted socket did ("" if none)
    second_accept: str  # what a second accept() did


def reset_before_accept(timeout: float = 2.0) -> ResetBeforeAccept:
    """A client connects, ``select()`` reports the listener readable, the client resets the
    connection (:func:`~nbio_helpers.clients.close_with_reset`), and only then does the
    server call ``accept()`` on its non-blocking listener.

    Linux (run): ``accept()`` returns the dead connection, whose first ``recv()`` raises
    ``ConnectionResetError``; a second ``accept()`` raises ``BlockingIOError``. Systems
    derived from BSD (macOS) may drop such a connection from the queue (``accept()`` then
    raises ``BlockingIOError``) or fail ``accept()`` with ``ConnectionAbortedError``
    (ECONNABORTED); Windows documents WSAECONNRESET (``ConnectionResetError``). Nothing
    blocks: about 0.05 s. Every socket is closed.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    conn = None
    try:
        client = socket.create_connection(listener.getsockname(), timeout=timeout)
        selected = bool(select.select([listener], [], [], timeout)[0])
        close_with_reset(client)
        time.sleep(0.05)  # the reset crosses the loopback at once; be generous
        try:
            conn, _ = listener.accept()
            accepted = "returned a socket"
        except OSError as exc:
            accepted = type(exc).__name__
        first = ""
        if conn is not None:
            conn.setblocking(False)
            select.select([conn], [], [], timeout)  # a reset connection is readable
            try:
                first = "data" if conn.recv(16) else "b''"
            except OSError as exc:
                first = type(exc).__name__
        try:
            listener.accept()[0].close()
            second = "returned a socket"
        except OSError as exc:
            second = type(exc).__name__
        return ResetBeforeAccept(selected, accepted, first, second)
    finally:
        if conn is not None:
            conn.close()
        listener.close()


# --------------------------------------------------------------------------- what one call costs
@dataclasses.dataclass
class DescriptorCost:
    """What :func:`select_cost_by_descriptor` measured: seconds per ``select()`` call.

    ``ran`` is False where descriptor numbers cannot be placed (Windows, where ``select()``
    takes arrays of sockets and their numbers play no part); ``explanation`` says why.
    """

    ran: bool
    one_low: float = math.nan  # one socket with a low descriptor number
    one_high: float = math.nan  # the same socket, numbered ``high``
    many_low: float = math.nan  # ``count`` sockets, all numbered below ``high``
    high: int = 0
    count: int = 0
    explanation: str = ""


def _seconds_per_call(fn, budget: float, batch: int) -> float:
    """Median seconds per ``fn()`` over batches of ``batch`` calls, for about ``budget`` s
    (at least 3 batches)."""
    samples: list[float] = []
    deadline = time.perf_counter() + budget
    while len(samples) < 3 or time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - start) / batch)
    return statistics.median(samples)


def select_cost_by_descriptor(
    high: int = 1000, count: int = 900, budget: float = 0.05
) -> DescriptorCost:
    """Time ``select.select(rlist, [], [], 0)`` three ways: one socket with a low descriptor
    number, the same socket duplicated to descriptor ``high`` (so that Python passes the
    kernel ``nfds = high + 1``), and ``count`` sockets numbered below ``high``.

    POSIX only (``ran=False`` on Windows). About ``3 * budget`` seconds; raises the
    open-files soft limit for the moment if needed; everything opened is closed.
    """
    if sys.platform == "win32":
        return DescriptorCost(
            False,
            explanation=("Windows: select() takes arrays of sockets; their numbers play no part"),
        )
    try:
        import fcntl
    except ImportError:
        return DescriptorCost(False, explanation="no fcntl module here to place a descriptor")
    with fd_limit_raised(high + count + 64) as fds:
        if fds is not None and fds < high + count + 64:
            return DescriptorCost(
                False,
                explanation=(
                    f"the open-files limit ({fds}) is too low for {count} sockets and "
                    f"descriptor {high}"
                ),
            )
        low, peer = socket.socketpair()
        placed = None
        many: list[socket.socket] = []
        try:
            placed = socket.socket(fileno=fcntl.fcntl(low.fileno(), fcntl.F_DUPFD, high))
            many = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
            watched = [sock for sock in many if sock.fileno() < high]
            return DescriptorCost(
                True,
                one_low=_seconds_per_call(lambda: select.select([low], [], [], 0), budget, 50),
                one_high=_seconds_per_call(lambda: select.select([placed], [], [], 0), budget, 50),
                many_low=_seconds_per_call(lambda: select.select(watched, [], [], 0), budget, 5),
                high=placed.fileno(),
                count=len(watched),
            )
        finally:
            for sock in [placed, low, peer, *many]:
                if sock is not None:
                    sock.close()


# --------------------------------------------------------------------------- FD_SETSIZE
@dataclasses.dataclass
class LimitDemo:
    """The outcome of a FD_SETSIZE demonstration. ``ran`` is False where it cannot run."""

    ran: bool
    error: str = ""  # e.g. "ValueError" (the type only: the message differs by OS)
    message: str = ""  # the exception's own text
    explanation: str = ""


def select_on_high_descriptor(limit: int = FD_SETSIZE) -> LimitDemo:
    """Give ``select()`` one socket whose descriptor is >= ``limit`` and report what it raised.

    POSIX: a socket is duplicated to the first free descriptor >= ``limit`` (raising the soft
    open-files limit for a moment if needed), passed to ``select()``, then closed.
    Windows: ``select()`` counts sockets instead; 513 sockets are passed. Nothing is left open.
    """
    if sys.platform == "win32":
        socks = [socket.socket() for _ in range(WINDOWS_SELECT_LIMIT + 1)]
        try:
            select.select(socks, [], [], 0)
        except ValueError as exc:
            return LimitDemo(
                True, "ValueError", str(exc), "Windows select() takes at most 512 sockets"
            )
        finally:
            for sock in socks:
                sock.close()
        return LimitDemo(True, "", "", "select() accepted 513 sockets on this Windows build")
    try:
        import fcntl
    except ImportError:
        return LimitDemo(False, explanation="no fcntl module here to place a descriptor")
    with fd_limit_raised(limit + 64) as fds:
        if fds is not None and fds < limit + 64:
            return LimitDemo(
                False,
                explanation=(
                    f"cannot open a descriptor >= {limit} here: the open-files limit is {fds}"
                ),
            )
        a, b = socket.socketpair()
        high = None
        try:
            high = socket.socket(fileno=fcntl.fcntl(a.fileno(), fcntl.F_DUPFD, limit))
            select.select([high], [], [], 0)
        except ValueError as exc:
            return LimitDemo(
                True,
                "ValueError",
                str(exc),
                f"select() only takes descriptors below FD_SETSIZE ({limit})",
            )
        except OSError as exc:
            return LimitDemo(
                False, explanation=(f"could not place a socket at descriptor >= {limit}: {exc}")
            )
        finally:
            for sock in (high, a, b):
                if sock is not None:
                    sock.close()
    return LimitDemo(True, "", "", "select() accepted the descriptor on this platform")


@contextlib.contextmanager
def low_descriptors_taken(limit: int = FD_SETSIZE):
    """Within the block, every descriptor below ``limit`` is in use, so the next socket this
    process opens (or accepts) gets a descriptor >= ``limit``. POSIX only; all closed on exit.

    Yields how many placeholder descriptors were opened.
    """
    with fd_limit_raised(limit + 256) as fds:
        if fds is not None and fds < limit + 256:
            raise OSError(
                errno.EMFILE, f"the open-files limit ({fds}) cannot be raised to {limit + 256}"
            )
        placeholders: list[int] = []
        try:
            fd = os.open(os.devnull, os.O_RDONLY)
            placeholders.append(fd)
            while fd < limit - 1:
                fd = os.dup(placeholders[0])  # the lowest free one: fills the holes in order
                placeholders.append(fd)
            yield len(placeholders)
        finally:
            for fd in placeholders:
                os.close(fd)


@dataclasses.dataclass
class HighDescriptorOutcome:
    """What happened to a client whose server-side socket got a descriptor >= FD_SETSIZE."""

    ran: bool
    model: str = ""
    high_client_served: bool = False  # its echo came back
    refusal: str = ""  # the server's recorded reason for closing it, if any
    others_served: bool = False  # a client connected before, and one after, were served
    explanation: str = ""


def high_descriptor_client(model: str = "select", timeout: float = 5.0) -> HighDescriptorOutcome:
    """Start a ``model`` server, connect one client normally, then one while every descriptor
    below FD_SETSIZE is taken (so the server accepts it as descriptor >= 1024), then another
    normally. Reports whether the high one was served and what the server recorded.

    Skips (``ran=False``) on Windows, where select's limit counts sockets, not descriptor numbers.
    """
    if sys.platform == "win32":
        return HighDescriptorOutcome(
            False,
            model,
            explanation=(
                "Windows: select() limits the number of sockets (512), not descriptor numbers"
            ),
        )
    server = MODELS[model](name=f"fd-limit-{model}").start()
    try:
        with connect(server.address, timeout) as before:
            before.sendall(b"before")
            first = recv_exactly(before, 6, timeout)
            closes = server.events.count(CLOSE)
            try:
                with low_descriptors_taken():
                    high = connect(server.address, timeout)
                    # The server accepts it while the low descriptors are still taken.
                    wait_until(lambda: server.events.count(ACCEPT) >= 2, timeout)
            except (ImportError, OSError, RuntimeError) as exc:
                return HighDescriptorOutcome(
                    False,
                    model,
                    explanation=(f"cannot open a descriptor >= {FD_SETSIZE} here: {exc}"),
                )
            with high:
                try:
                    high.sendall(b"high")
                    served = recv_exactly(high, 4, timeout) == b"HIGH"
                except (ConnectionError, TimeoutError, OSError):
                    served = False
            wait_until(lambda: server.events.count(CLOSE) > closes or served, timeout)
            refusals = [e.detail for e in server.events.events(CLOSE) if "FD_SETSIZE" in e.detail]
            before.sendall(b"still here")
            others = first == b"BEFORE" and recv_exactly(before, 10, timeout) == b"STILL HERE"
            others = others and request(server.address, b"after", timeout) == b"AFTER"
        return HighDescriptorOutcome(True, model, served, refusals[0] if refusals else "", others)
    finally:
        server.stop()


__all__ = [
    "ONE_WINS",
    "AlwaysWritableSelectServer",
    "DescriptorCost",
    "HeartbeatSelectServer",
    "HighDescriptorOutcome",
    "LimitDemo",
    "PartialSendReport",
    "ResetBeforeAccept",
    "compare",
    "comparison_relations",
    "comparison_table",
    "count_partial_sends",
    "high_descriptor_client",
    "idle_cost",
    "low_descriptors_taken",
    "partial_send_report",
    "plot_comparison",
    "print_relations",
    "reset_before_accept",
    "select_cost_by_descriptor",
    "select_on_high_descriptor",
    "serve_ready",
    "spare_cores",
    "two_acceptors",
]
