"""Clients: one request, exact receives, a two-way echo stream, and a load generator. Every
call has a timeout.

Usage::

    request(server.address, b"hello")                 # -> b"HELLO"
    result = run_load(server.address, clients=100, messages=20)
    result.ok, result.messages_per_second, result.median_latency
    sent, echo = stream_echo(sock, payload, timeout=5, stall=1)   # send while reading

The non-blocking ones make each call as :mod:`nbio_helpers.nonblocking` says: try once; on
``BlockingIOError`` wait for readiness; retry.
"""

from __future__ import annotations

import dataclasses
import errno
import random
import selectors
import socket
import statistics
import time
from typing import TypeVar

from nbio_helpers.addresses import address_family
from nbio_helpers.connection import echo_upper
from nbio_helpers.limits import ensure_fd_room
from nbio_helpers.measure.stats import Tail, tail
from nbio_helpers.nonblocking import READ, WRITE, Readiness, attempt

_Owner = TypeVar("_Owner", bound="OwnsSocket")


class OwnsSocket:
    """For a client class that holds one socket in ``self.sock``: ``close()`` closes it,
    and ``with client:`` closes it at the end of the block, whatever happened in it."""

    sock: socket.socket

    def close(self) -> None:
        self.sock.close()

    def __enter__(self: _Owner) -> _Owner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(address, timeout: float = 5.0) -> socket.socket:
    """A connected TCP socket in timeout mode: every call waits at most ``timeout`` seconds
    (the descriptor is non-blocking underneath; Python waits with ``poll()`` or ``select()``)."""
    sock = socket.create_connection(address, timeout=timeout)
    sock.settimeout(timeout)
    return sock


def recv_exactly(sock: socket.socket, n: int, timeout: float = 5.0) -> bytes:
    """Receive exactly ``n`` bytes, or raise.

    Raises ``TimeoutError`` if ``timeout`` seconds pass first (the bytes received so far are in
    the message), ``ConnectionError`` if the peer closes before ``n`` bytes came.
    """
    deadline = time.monotonic() + timeout
    chunks, got = [], 0
    old_timeout = sock.gettimeout()
    try:
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"received {got} of {n} bytes in {timeout} s")
            sock.settimeout(left)
            try:
                chunk = sock.recv(min(n - got, 1 << 20))
            except TimeoutError:
                raise TimeoutError(f"received {got} of {n} bytes in {timeout} s") from None
            if not chunk:
                raise ConnectionError(f"peer closed after {got} of {n} bytes")
            chunks.append(chunk)
            got += len(chunk)
    finally:
        sock.settimeout(old_timeout)
    return b"".join(chunks)


def request(address, data: bytes, timeout: float = 5.0) -> bytes:
    """Connect, send ``data``, return the echo (``len(data)`` bytes), close."""
    if isinstance(data, str):
        raise TypeError("request() sends bytes: use b'...' or text.encode()")
    with connect(address, timeout) as sock:
        sock.sendall(data)
        return recv_exactly(sock, len(data), timeout)


def stream_echo(
    sock: socket.socket,
    payload: bytes,
    *,
    timeout: float,
    stall: float,
    send_size: int | None = None,
    recv_size: int = 1 << 16,
    read_pause: float = 0.0,
) -> tuple[int, bytes]:
    """Send ``payload`` on a connected ``sock`` while reading its echo; return
    ``(bytes sent, bytes received)``.

    Both ways at once, because an echo larger than the socket buffers cannot wait until the
    sending is done: the server's replies would fill the buffers and it would stop reading.
    The client writes while the kernel takes its bytes, and reads when it cannot write (or
    has nothing left to write), each call tried first and waited for only when it would
    block (:mod:`nbio_helpers.nonblocking`).

    Parameters
    ----------
    sock:
        A connected TCP socket; it is made non-blocking and left open.
    payload:
        The bytes to send.
    timeout:
        Seconds after which to stop, whatever is still on its way.
    stall:
        Seconds without a byte sent or received after which to stop (lost bytes never come).
    send_size:
        At most this many bytes per ``send()`` (None: all that is left).
    recv_size:
        Bytes asked of each ``recv()``.
    read_pause:
        Seconds to sleep after each ``recv()``: a slow reader, so that the echo piles up on
        the server's side (its sends come out partial).

    Returns
    -------
    How many bytes the kernel took from us, and the bytes that came back. Stops early, without
    raising, when the server closes the connection or a call fails (``OSError``).
    """
    sock.setblocking(False)
    out = memoryview(payload)
    got = bytearray()
    deadline = time.monotonic() + timeout
    last_progress = time.monotonic()
    with Readiness(sock) as ready:
        try:
            while len(got) < len(payload) and time.monotonic() < deadline:
                if out:
                    sent = attempt(sock.send, out[:send_size] if send_size else out)
                    if sent is not None:
                        out = out[sent:]
                        last_progress = time.monotonic()
                        continue
                # No room to write (or nothing left to write): wait to read, or to write again.
                try:
                    mask = ready.wait(
                        READ | (WRITE if out else 0), min(deadline, last_progress + stall)
                    )
                except TimeoutError:
                    break
                if not mask & READ:
                    continue
                chunk = attempt(sock.recv, recv_size)
                if chunk is None:  # readiness is a hint
                    continue
                if not chunk:
                    break
                got += chunk
                last_progress = time.monotonic()
                if read_pause:
                    time.sleep(read_pause)
        except OSError:
            pass
    return len(payload) - len(out), bytes(got)


@dataclasses.dataclass
class LoadResult:
    """What :func:`run_load` measured. Latencies are in seconds, one per echoed message."""

    clients: int
    messages: int
    size: int
    latencies: list[float]
    elapsed: float
    errors: list[str]

    @property
    def completed(self) -> int:
        """Messages whose echo came back correct."""
        return len(self.latencies)

    @property
    def ok(self) -> bool:
        """Every message of every client came back, byte for byte, and nothing failed."""
        return not self.errors and self.completed == self.clients * self.messages

    @property
    def messages_per_second(self) -> float:
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def median_latency(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")

    @property
    def tail_latency(self) -> Tail:
        """The slow end under its true name: p99 with 1,000 echoes or more, p90 with 100 or
        more, else the maximum (:func:`nbio_helpers.measure.stats.tail`)."""
        return tail(self.latencies)

    @property
    def p99_latency(self) -> float:
        """The p99 latency; ``nan`` with fewer than 1,000 echoes (see :attr:`tail_latency`)."""
        slow = self.tail_latency
        return slow.value if slow.name == "p99" else float("nan")

    def summary(self) -> dict:
        """Plain numbers, for printing or JSON."""
        return {
            "clients": self.clients,
            "messages": self.messages,
            "size": self.size,
            "completed": self.completed,
            "ok": self.ok,
            "errors": self.errors[:10],
            "elapsed_s": self.elapsed,
            "messages_per_second": self.messages_per_second,
            "median_latency_s": self.median_latency,
            "p99_latency_s": self.p99_latency,
            "tail_latency_s": self.tail_latency.value,
            "tail_name": self.tail_latency.name,
        }


class _LoadClient:
    """One simulated client: send a message, wait for its whole echo, repeat."""

    def __init__(self, index: int, address, messages: int, size: int, seed: int):
        self.index = index
        self.rng = random.Random(seed * 1_000_003 + index)
        self.left = messages
        self.size = size
        self.sock = socket.socket(address_family(address[0]))
        self.sock.setblocking(False)
        err = self.sock.connect_ex(address)
        # "In progress" is EINPROGRESS (Winsock: WSAEWOULDBLOCK). Not EWOULDBLOCK: on Linux it
        # is EAGAIN, which from connect() means the connection failed (man 2 connect).
        if err not in (0, errno.EINPROGRESS, getattr(errno, "WSAEWOULDBLOCK", -1)):
            self.sock.close()
            raise ConnectionError(f"connect failed: {errno.errorcode.get(err, err)}")
        self.connected = False
        self.out: bytes | memoryview = b""
        self.expected = b""
        self.got = bytearray()
        self.sent_at = 0.0

    def next_message(self) -> None:
        message = self.rng.randbytes(self.size)
        self.out = memoryview(message)
        self.expected = echo_upper(message)
        self.got = bytearray()
        self.sent_at = time.perf_counter()


def run_load(
    address,
    clients: int = 100,
    messages: int = 20,
    size: int = 64,
    timeout: float = 30.0,
    seed: int = 0,
) -> LoadResult:
    """Run ``clients`` concurrent clients, each sending ``messages`` messages of ``size`` random
    bytes and checking every echo, all in the calling thread (one selector, no threads).

    Returns a :class:`LoadResult`; never raises for the server's faults (they are in
    ``result.errors``). Gives up after ``timeout`` seconds. Raises the soft limit on open
    descriptors first if it is too low for ``2 * clients`` more (see
    :func:`~nbio_helpers.limits.ensure_fd_room`).
    """
    if clients < 1 or messages < 1 or size < 1:
        raise ValueError("clients, messages and size must all be >= 1")
    ensure_fd_room(2 * clients)  # the server may be in this process too (macOS allows 256)
    latencies: list[float] = []
    errors: list[str] = []
    sel = selectors.DefaultSelector()
    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    live = 0
    try:
        for i in range(clients):
            try:
                client = _LoadClient(i, address, messages, size, seed)
            except OSError as exc:
                errors.append(f"client {i}: {exc}")
                continue
            sel.register(client.sock, selectors.EVENT_WRITE, client)
            live += 1
        while live and time.monotonic() < deadline:
            for key, mask in sel.select(timeout=min(0.5, max(0.0, deadline - time.monotonic()))):
                client = key.data
                failure = _step(client, mask, latencies)
                if failure is not None or client.left == 0:
                    if failure:
                        errors.append(f"client {client.index}: {failure}")
                    sel.unregister(client.sock)
                    client.sock.close()
                    live -= 1
                else:
                    # Read while still sending: a large echo fills both ways at once.
                    wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.out else 0)
                    if wanted != key.events:
                        sel.modify(client.sock, wanted, client)
        if live:
            errors.append(f"{live} client(s) timed out after {timeout} s")
    finally:
        for key in list(sel.get_map().values()):
            key.data.sock.close()
        sel.close()
    return LoadResult(clients, messages, size, latencies, time.perf_counter() - start, errors)


def _step(client: _LoadClient, mask: int, latencies: list[float]) -> str | None:
    """Advance one client as far as its socket allows; return an error text on failure."""
    try:
        if not client.connected:
            err = client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return f"connect failed: {errno.errorcode.get(err, err)}"
            client.connected = True
            client.next_message()
        # The selector's select() is the wait; a call that would block anyway (readiness is a
        # hint) returns None and is tried again at the next report (nbio_helpers.nonblocking).
        if mask & selectors.EVENT_WRITE and client.out:
            sent = attempt(client.sock.send, client.out)
            if sent is not None:
                client.out = client.out[sent:]
        if mask & selectors.EVENT_READ:
            chunk = attempt(client.sock.recv, max(65536, client.size))
            if chunk is None:
                return None
            if not chunk:
                return f"server closed the connection with {client.left} message(s) to go"
            client.got += chunk
            if len(client.got) > len(client.expected):
                return "received more bytes than were sent"
            if len(client.got) == len(client.expected):
                if client.got != client.expected:
                    return "echo did not match what was sent"
                latencies.append(time.perf_counter() - client.sent_at)
                client.left -= 1
                if client.left:
                    client.next_message()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


# ------------------------------------------------------------------- an abortive close
def close_with_reset(sock: socket.socket) -> None:
    """Close ``sock`` so that the peer gets a reset (RST) instead of an orderly end (FIN).

    Sets ``SO_LINGER`` on, with a timeout of zero seconds, then closes: the kernel discards
    whatever is still unsent and aborts the connection. The peer's next ``recv()`` (or
    ``send()``) raises ``ConnectionResetError`` (``ECONNRESET``; Windows ``WSAECONNRESET``),
    once; on Linux, later calls give ``b''`` and ``BrokenPipeError``. For demos and tests of a
    broken connection; a program closes normally.

    Parameters
    ----------
    sock:
        A connected TCP socket; it is closed on return.
    """
    import struct
    import sys

    # struct linger: two ints on Unix (socket(7)), two u_shorts on Windows (winsock2.h).
    layout = "HH" if sys.platform == "win32" else "ii"
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack(layout, 1, 0))
    finally:
        sock.close()


__all__ = [
    "LoadResult",
    "OwnsSocket",
    "close_with_reset",
    "connect",
    "recv_exactly",
    "request",
    "run_load",
    "stream_echo",
]
