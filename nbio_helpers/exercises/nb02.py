"""Checkers for notebook 02 (non-blocking recv and send).

* :func:`check_recv_nonblocking` — the learner writes ``recv_nonblocking(sock)``, which returns
  ``None`` for "no data yet", ``b''`` for "the peer closed" and the data otherwise; the
  checker calls it on a real non-blocking TCP socket in each of the three states.
* :func:`check_send_all_nonblocking` — the learner writes
  ``send_all_nonblocking(sock, data, timeout)``; the checker pushes 8 MiB through a socket
  with small buffers to a slow reader (every byte must arrive, in order, once), then sends to
  a peer that never reads, its buffers already full (``TimeoutError`` after about ``timeout``).

Usage in the notebook::

    from nbio_helpers.exercises.nb02 import check_recv_nonblocking
    check_recv_nonblocking(recv_nonblocking)
"""
from __future__ import annotations

import hashlib
import select
import socket
import threading
import time

from . import NotYet, checker, describe_exception
from .nb01 import ScriptedPeer, run_learner


def _wait_readable(sock: socket.socket, timeout: float = 2.0) -> None:
    """Wait until ``sock`` has data (or EOF) to read; the checker's own, bounded wait."""
    readable, _, _ = select.select([sock], [], [], timeout)
    if not readable:  # not the learner's fault: the machine is very slow
        raise NotYet("the checker's peer did not deliver its data within 2 s",
                     "run the checker cell again.")


def _still_nonblocking(sock: socket.socket, name: str) -> None:
    if sock.gettimeout() != 0.0:
        raise NotYet(f"after {name}(), the socket is no longer non-blocking "
                     f"(gettimeout() is {sock.gettimeout()!r}, it was 0.0)",
                     "leave the socket's mode alone: handle BlockingIOError instead of "
                     "switching to blocking or timeout mode.")


# ----------------------------------------------------------------------- recv_nonblocking
RECV_HANG_HINT = ("on a non-blocking socket recv() never waits; if your function waited, it "
                  "changed the socket's mode (setblocking(True) or settimeout(...)): don't.")


@checker
def check_recv_nonblocking(recv_nonblocking):
    """Check ``recv_nonblocking(sock)`` on a non-blocking socket in its three states:
    no data yet (``None``), data waiting (the bytes), peer closed (``b''``)."""
    if not callable(recv_nonblocking):
        raise NotYet(f"expected a function, got {type(recv_nonblocking).__name__}",
                     "pass the function itself: check_recv_nonblocking(recv_nonblocking).")
    with ScriptedPeer() as peer:
        sock = peer.sock
        sock.setblocking(False)
        _expect_not_yet(recv_nonblocking, sock, "nothing was sent yet")

        peer.far.sendall(b"hello")
        _wait_readable(sock)
        _expect_value(recv_nonblocking, sock, b"hello",
                      raised=("with b'hello' waiting",
                              "return what sock.recv(...) returns when it returns."),
                      wrong=("with b'hello' waiting in the socket", "",
                             "call sock.recv(65536) once and return its result."))
        _still_nonblocking(sock, "recv_nonblocking")
        _expect_not_yet(recv_nonblocking, sock, "b'hello' was read and nothing more came")

        peer.far.close()
        _wait_readable(sock)
        _expect_value(recv_nonblocking, sock, b"",
                      raised=("after the peer closed",
                              "at end of stream recv() returns b'': return it."),
                      wrong=("after the peer closed", " instead of b''",
                             "recv() returns b'' when the peer has closed: return it as it "
                             "is, so that the caller can tell 'closed' (b'') from 'not yet' "
                             "(None)."))
    return "None while nothing had arrived, the data when it was there, b'' once the peer closed"


def _expect_value(fn, sock: socket.socket, expected: bytes, raised: tuple, wrong: tuple) -> None:
    """Run the learner's ``fn(sock)``; fail with ``raised`` = (situation, hint) if it raises,
    or with ``wrong`` = (situation, suffix, hint) if it returns anything but ``expected``."""
    out = run_learner(fn, sock, limit=2.0, hang_hint=RECV_HANG_HINT)
    if out.error is not None:
        situation, hint = raised
        raise NotYet(f"{situation}, your function raised {describe_exception(out.error)}", hint)
    if out.value != expected:
        situation, suffix, hint = wrong
        raise NotYet(f"{situation}, your function returned {out.value!r}{suffix}", hint)


def _expect_not_yet(fn, sock: socket.socket, situation: str) -> None:
    out = run_learner(fn, sock, limit=2.0, hang_hint=RECV_HANG_HINT)
    if isinstance(out.error, BlockingIOError):
        raise NotYet(f"when {situation}, BlockingIOError escaped from your function",
                     "catch it: `except BlockingIOError: return None` — on a non-blocking "
                     "socket it only means 'no data yet, try later'.")
    if out.error is not None:
        raise NotYet(f"when {situation}, your function raised {describe_exception(out.error)}",
                     "catch BlockingIOError (no data yet) and return None.")
    if out.value == b"":
        raise NotYet(f"when {situation}, your function returned b''",
                     "b'' means 'the peer closed the connection'; 'no data yet' must look "
                     "different: return None.")
    if out.value is not None:
        raise NotYet(f"when {situation}, your function returned {out.value!r} instead of None",
                     "return None when recv() raises BlockingIOError.")
    _still_nonblocking(sock, getattr(fn, "__name__", "your function"))


# -------------------------------------------------------------------- send_all_nonblocking
PAYLOAD_SIZE = 8 * 1024 * 1024
SMALL_BUFFER = 16 * 1024
"""SO_SNDBUF of the learner's socket and SO_RCVBUF of the reader: many partial sends."""

SEND_TIMEOUT = 0.5
"""The ``timeout`` given to the learner's function when the peer never reads."""

STALL = 3.0
"""Seconds without a byte reaching the (always reading) reader: the sender is stuck."""

SEND_HANG_HINT = ("wait for room with select.select([], [sock], [], time_left): never without "
                  "a timeout, and give up with TimeoutError once the deadline has passed.")


def payload(size: int = PAYLOAD_SIZE) -> bytes:
    """``size`` bytes that differ along the way, so a lost or repeated piece is noticed."""
    block = bytes(range(256)) * 256 + b"!"          # 65537 bytes: not aligned to any buffer
    return (block * (size // len(block) + 1))[:size]


class SlowReader:
    """Reads ``peer.far`` in a thread, pausing after every ``recv`` (a slow consumer)."""

    def __init__(self, sock: socket.socket, pause: float = 0.001):
        self.sock = sock
        self.pause = pause
        self.received = bytearray()
        self.last_progress = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="check-slow-reader")
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            self.received += chunk
            self.last_progress = time.monotonic()
            self._stop.wait(self.pause)

    def wait_for(self, size: int, quiet: float = 0.5, limit: float = 10.0) -> int:
        """Wait until ``size`` bytes came, or nothing came for ``quiet`` s; return the count."""
        deadline = time.monotonic() + limit
        while len(self.received) < size and time.monotonic() < deadline:
            if time.monotonic() - self.last_progress > quiet:
                break
            time.sleep(0.01)
        return len(self.received)

    def stalled(self, seconds: float) -> str:
        """Why to give up on the sender: nothing arrived for ``seconds`` ('' if something did)."""
        if time.monotonic() - self.last_progress > seconds:
            return (f"made no progress: not a byte had arrived for {seconds:g} s "
                    f"({len(self.received):,} bytes so far)")
        return ""

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)


@checker
def check_send_all_nonblocking(send_all_nonblocking):
    """Check ``send_all_nonblocking(sock, data, timeout)``: 8 MiB through small buffers to a slow
    reader arrive whole; a peer that never reads gives ``TimeoutError`` after about ``timeout``."""
    if not callable(send_all_nonblocking):
        raise NotYet(f"expected a function, got {type(send_all_nonblocking).__name__}",
                     "pass the function itself: check_send_all_nonblocking(send_all_nonblocking).")
    _big_send(send_all_nonblocking)
    _never_read(send_all_nonblocking)
    return ("8 MiB arrived byte for byte through small buffers, and a peer that never read "
            "gave TimeoutError in time")


def _big_send(fn) -> None:
    data = payload()
    with ScriptedPeer(sndbuf=SMALL_BUFFER, rcvbuf=SMALL_BUFFER) as peer:
        peer.sock.setblocking(False)
        reader = SlowReader(peer.far)
        try:
            out = run_learner(fn, peer.sock, data, 20.0, limit=25.0, hang_hint=SEND_HANG_HINT,
                              give_up=lambda: reader.stalled(STALL))
            count = reader.wait_for(len(data))
        finally:
            reader.stop()
        if out.error is not None:
            _explain_send_error(out.error, count, len(data))
        _still_nonblocking(peer.sock, getattr(fn, "__name__", "your function"))
        got = bytes(reader.received)
    if len(got) < len(data):
        raise NotYet(f"your function returned, but the reader received only {len(got):,} of "
                     f"{len(data):,} bytes: the rest was lost",
                     "send() takes only what fits in the send buffer and returns how many "
                     "bytes it took: keep sending the rest, data[sent:], until nothing is left.")
    if len(got) > len(data) or hashlib.sha256(got).digest() != hashlib.sha256(data).digest():
        raise NotYet(f"the reader received {len(got):,} bytes for {len(data):,} sent, and they "
                     "are not the bytes sent: some were sent twice or out of order",
                     "after a partial send, continue from where send() stopped (data[sent:]); "
                     "after BlockingIOError nothing was sent, so retry the same bytes.")


def _explain_send_error(error: BaseException, count: int | None, size: int) -> None:
    if isinstance(error, BlockingIOError):
        arrived = "" if count is None else f" after {count:,} of {size:,} bytes had arrived"
        raise NotYet(f"BlockingIOError escaped from your function{arrived}",
                     "sendall() (or an unguarded send()) on a non-blocking socket raises "
                     "BlockingIOError as soon as the buffer is full, and then you cannot know "
                     "how much went out. Use send(), keep the count, and on BlockingIOError "
                     "wait with select() before trying again.")
    if isinstance(error, TimeoutError):
        raise NotYet(f"your function raised TimeoutError with timeout=20 although the reader "
                     f"was reading ({count:,} of {size:,} bytes arrived)",
                     "compute the deadline once (time.monotonic() + timeout) and compare "
                     "against it; wait with select() for the time left.")
    raise NotYet(f"your function raised {describe_exception(error)} after {count:,} of {size:,} "
                 "bytes had reached the reader",
                 "read the error message; only BlockingIOError means 'try again later'.")


def fill_buffers(sock: socket.socket, limit: int = 64 * 1024 * 1024) -> int:
    """Send on non-blocking ``sock`` until ``send()`` raises BlockingIOError; return the count.

    With a peer that never reads, the learner's first ``send()`` then has no room. Needed on
    Windows: there, while its send buffer is under ``SO_SNDBUF``, Winsock accepts a whole
    ``send()`` however large, so 8 MiB could "fit" into an empty buffer at once.
    """
    chunk = b"\0" * 65536
    total = 0
    while total < limit:
        try:
            total += sock.send(chunk)
        except BlockingIOError:
            return total
    raise RuntimeError(f"the buffers did not fill up after {total:,} bytes")


def _never_read(fn) -> None:
    data = payload()
    with ScriptedPeer(sndbuf=SMALL_BUFFER, rcvbuf=SMALL_BUFFER) as peer:
        peer.sock.setblocking(False)
        fill_buffers(peer.sock)                 # the far end never reads: no room is left
        out = run_learner(fn, peer.sock, data, SEND_TIMEOUT, limit=SEND_TIMEOUT + 2.5,
                          hang_hint=SEND_HANG_HINT)
    if out.error is None:
        raise NotYet(f"the peer never read and the buffers were already full, so the "
                     f"{len(data):,} bytes could not be sent; your function returned as if "
                     "they had been",
                     "when the deadline passes with bytes still unsent, raise TimeoutError "
                     "(say how many went out).")
    if isinstance(out.error, BlockingIOError):
        _explain_send_error(out.error, None, len(data))
    if not isinstance(out.error, TimeoutError):
        raise NotYet(f"with a peer that never reads, your function raised "
                     f"{describe_exception(out.error)} instead of TimeoutError",
                     "when the deadline passes with bytes still unsent, raise TimeoutError.")
    if out.elapsed > SEND_TIMEOUT + 1.0:
        raise NotYet(f"with timeout={SEND_TIMEOUT}, TimeoutError came only after "
                     f"{out.elapsed:.1f} s", SEND_HANG_HINT)


__all__ = ["SlowReader", "check_recv_nonblocking", "check_send_all_nonblocking", "fill_buffers",
           "payload"]
