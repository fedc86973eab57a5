"""Phase 2 of a ``recv()``, *copy data to user*, timed alone.

A blocking ``recv()`` first waits for data (phase 1, as long as the peer takes), then copies
what has arrived from the kernel's receive buffer into the program (phase 2). Phase 1 hides
phase 2 in any timing of a whole call; :func:`copy_time` removes phase 1: it puts the bytes
in the receive buffer first, then times one ``recv()`` that finds them all there::

    from nbio_helpers.lessons.nb01 import copy_time
    timing = copy_time(64 * 1024)          # 21 runs
    timing.median, timing.low, timing.high  # seconds: median, min, max
    timing.bytes_per_second

Bounded in time (every wait has ``timeout``) and closes what it opens. It runs in the calling
thread alone (no server, no other thread takes part in the timed call).
"""

from __future__ import annotations

import dataclasses
import socket
import statistics
import time

MAX_SIZE = 128 * 1024
"""The largest ``size`` :func:`copy_time` accepts. All the bytes must fit, unread, in one
receive buffer, and Linux caps the buffer a program may ask for at ``net.core.rmem_max``
(often 212,992 bytes; ``getsockopt`` then reports it doubled, for bookkeeping), of which TCP
offers the sender only a part as window (``man 7 tcp``, ``tcp_adv_win_scale``: as little
as half)."""

__all__ = ["MAX_SIZE", "CopyTiming", "buffered_pair", "copy_time", "fits"]


@dataclasses.dataclass(frozen=True)
class CopyTiming:
    """How long one ``recv(size)`` took when its ``size`` bytes were already waiting.

    ``median``, ``low`` (the fastest run) and ``high`` (the slowest) are in seconds, over
    ``repeats`` timed calls.
    """

    size: int
    repeats: int
    median: float
    low: float
    high: float

    @property
    def bytes_per_second(self) -> float:
        """``size / median``: the copy rate (inf if the clock saw no time pass)."""
        return self.size / self.median if self.median > 0 else float("inf")


def copy_time(size: int, repeats: int = 21, timeout: float = 5.0) -> CopyTiming:
    """Time phase 2 of ``recv()`` (*copy data to user*) for ``size`` bytes.

    A sender puts ``size`` bytes on a loopback TCP connection whose receiver has a receive
    buffer big enough for all of them. Once every byte is waiting there (checked with
    ``recv(size, MSG_PEEK)``, which looks without consuming), one ``recv(size)`` on the
    non-blocking receiver is timed with ``time.perf_counter()``: it never waits for data,
    so what is timed is one system call that copies ``size`` bytes, plus Python's fixed cost
    of a call (most of the figure for a few bytes). Repeated ``repeats`` times.

    Parameters
    ----------
    size:
        Bytes per ``recv()``, from 1 to :data:`MAX_SIZE`.
    repeats:
        How many timed calls (at least 1); the median is reported, with min and max.
    timeout:
        Seconds to wait, each time, for the bytes to be sent and to arrive.

    Returns
    -------
    CopyTiming

    Raises
    ------
    ValueError
        ``size`` or ``repeats`` out of range, or a receive buffer too small for ``size``
        on this system.
    TimeoutError
        The bytes did not all arrive within ``timeout``.
    RuntimeError
        ``recv()`` kept returning fewer bytes than were waiting (then no figure would mean
        "the copy of ``size`` bytes").
    """
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_SIZE:
        raise ValueError(f"size must be an int from 1 to {MAX_SIZE:,} bytes, not {size!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int of at least 1, not {repeats!r}")
    sender, receiver = buffered_pair(size, timeout)
    data = b"x" * size
    times: list[float] = []
    short = 0
    with sender, receiver:
        while len(times) < repeats:
            sender.sendall(data)
            _wait_buffered(receiver, size, timeout)
            start = time.perf_counter()
            got = receiver.recv(size)
            elapsed = time.perf_counter() - start
            if len(got) == size:
                times.append(elapsed)
                continue
            # Not a copy of `size` bytes: drop this run (never seen on loopback, where the
            # bytes were all waiting), read the rest, try again a bounded number of times.
            short += 1
            if short > repeats:
                raise RuntimeError(
                    f"recv({size}) kept returning fewer bytes than were waiting ({len(got)})"
                )
            _drain(receiver, size - len(got), timeout)
    return CopyTiming(size, repeats, statistics.median(times), min(times), max(times))


def buffered_pair(size: int, timeout: float) -> tuple[socket.socket, socket.socket]:
    """A connected ``(sender, receiver)`` pair on 127.0.0.1, as :func:`copy_time` times
    it: the receiver is non-blocking, its receive buffer large enough for ``size`` unread
    bytes; ``timeout`` is the sender's, and bounds the accept.

    Raises ValueError if the system refuses such a buffer."""
    wanted = 4 * MAX_SIZE
    with socket.create_server(("127.0.0.1", 0)) as listener:
        # Set on the listener, before the connection exists: the accepted socket inherits
        # it, and TCP then offers the peer a window big enough for `size` waiting bytes.
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
        except OSError:  # macOS refuses a size above its limit (ENOBUFS)
            pass
        sender = socket.create_connection(listener.getsockname(), timeout=timeout)
        try:
            listener.settimeout(timeout)
            receiver, _ = listener.accept()
        except BaseException:
            sender.close()
            raise
    granted = receiver.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if not fits(size, granted):
        sender.close()
        receiver.close()
        raise ValueError(
            f"{size:,} bytes do not fit, unread, in this system's receive "
            f"buffer ({granted:,} bytes)"
        )
    receiver.setblocking(False)  # recv() never waits: no poll() inside, just the copy
    return sender, receiver


def fits(size: int, rcvbuf: int) -> bool:
    """Whether ``size`` unread bytes surely fit a receive buffer of ``rcvbuf`` bytes (as
    ``getsockopt(SO_RCVBUF)`` reports it): half of it, since TCP may offer no more than
    that as window (Linux with ``tcp_adv_win_scale`` = 1)."""
    return size <= rcvbuf // 2


def _wait_buffered(sock: socket.socket, size: int, timeout: float) -> None:
    """Wait until ``size`` bytes are waiting in ``sock``'s receive buffer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if len(sock.recv(size, socket.MSG_PEEK)) >= size:
                return
        except BlockingIOError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{size:,} bytes did not arrive within {timeout} s")
        time.sleep(0.0005)


def _drain(sock: socket.socket, missing: int, timeout: float) -> None:
    """Read and drop ``missing`` bytes from the non-blocking ``sock``."""
    deadline = time.monotonic() + timeout
    while missing > 0:
        try:
            chunk = sock.recv(missing)
            if not chunk:
                raise ConnectionError(f"the sender closed, {missing:,} bytes short")
            missing -= len(chunk)
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{missing:,} bytes did not arrive within {timeout} s") from None
            time.sleep(0.0005)
