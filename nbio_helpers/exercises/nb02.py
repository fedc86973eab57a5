"""Checkers for notebook 02 (non-blocking recv and send).

Usage in the notebook::

    from nbio_helpers.exercises.nb02 import check_recv_nonblocking
    check_recv_nonblocking(recv_nonblocking)

The learner's function gets the learner's end of a real TCP connection on 127.0.0.1 (a
:class:`~nbio_helpers.exercises.nb01.ScriptedPeer`), wrapped in a :class:`WatchedSocket`: a
real socket that also notes the calls the rules are about (how many ``recv()``, ``send()``
and ``sendall()`` calls, and any ``setblocking()``/``settimeout()`` that would make it wait).

Exercise 1, ``recv_nonblocking(sock)`` (:func:`check_recv_nonblocking`)
------------------------------------------------------------------------
Rules stated by the exercise text, and how each is checked:

1. it tries ``sock.recv(65536)`` once: at most one ``recv()`` per call (watched), and with
   70,000 bytes waiting it returns the first 65,536 of them, then the other 4,464;
2. data waiting: it returns the data;
3. the peer has finished sending (its FIN: ``shutdown(SHUT_WR)``): it returns ``b''``, on
   every call, and leaves the socket open (the caller may still send);
4. nothing has arrived yet: it returns ``None``;
5. it never waits: a "not yet" call returns within :data:`WAIT_LIMIT` (tried up to three
   times, so a busy machine is not mistaken for a wait);
6. ``BlockingIOError`` never escapes;
7. it leaves the socket's mode alone: no ``setblocking(True)`` / ``settimeout()`` that waits,
   not even for a moment (watched), and the socket is non-blocking afterwards;
8. a reset (the peer closed with ``SO_LINGER`` 0) is not hidden: ``ConnectionResetError``
   reaches the caller.

Typical mistakes, each rejected with a hint that names it (tests/test_exercises_nb02.py):
``BlockingIOError`` let out; ``b''`` for "not yet"; ``None`` for ``b''`` (``recv() or None``);
switching to blocking mode (hangs: "switched the socket to blocking mode"); timeout mode, even
restored afterwards; ``select()`` with a timeout before ``recv()`` (waits); a loop that retries
``recv()`` until data comes (spins, never returns: "called recv() N times"), or a bounded one;
reading everything until ``BlockingIOError`` (more than 65,536 bytes, several calls); a smaller
``recv(1024)``; ``except OSError: return None`` or ``except Exception`` (hides the reset);
a reset turned into ``b''``, or wrapped in another exception; closing or shutting down the
socket on ``b''``.

Exercise 2, ``send_all_nonblocking(sock, data, timeout)`` (:func:`check_send_all_nonblocking`)
-------------------------------------------------------------------------------------------
Rules stated by the exercise text, and how each is checked:

1. every byte of ``data`` arrives, in order, exactly once: 8 MiB (not periodic in any buffer
   size) through 16 KiB buffers to a reader that pauses after every ``recv()``, compared by
   hash; after a timeout, what arrived is a prefix of ``data``;
2. when the buffer is full it waits with ``select()`` instead of retrying at full speed: with
   a peer that never reads, at most :data:`SPIN_ATTEMPTS` failed ``send()`` calls and
   ``select()`` looks at the socket (watched), and less than :data:`SPIN_SHARE` of a core
   (the CPU time of the learner's own thread) during the ``timeout``;
3. ``timeout`` is for the whole call: a peer that never reads gives ``TimeoutError`` after
   about ``timeout`` (not much sooner, not much later); a peer that makes a little room every
   0.1 s (:data:`TRICKLE_SIZE` every :data:`TRICKLE_PAUSE`) still gives ``TimeoutError`` in
   time, which a timeout per ``select()`` never does (not on Windows, where Winsock takes a
   whole ``send()``, however large, as soon as its send buffer is below ``SO_SNDBUF``: the
   reference would send everything there);
4. no ``sendall()`` (watched), and the socket stays non-blocking (watched, and checked after);
5. it returns ``None`` once everything is sent;
6. another ``OSError`` reaches the caller: when the peer resets the connection while the
   function waits for room (buffers full), ``send()``'s ``ConnectionResetError`` /
   ``BrokenPipeError`` (a ``ConnectionError``) comes out at once, not a ``TimeoutError``
   after retrying.

Typical mistakes, each rejected with a hint that names it: one ``send()`` (bytes lost);
``sendall()`` on the non-blocking socket; blocking or timeout mode plus ``sendall()``; a busy
loop on ``BlockingIOError`` (``pass``/``continue``), or polling ``select(..., 0)``; a
``time.sleep()`` of a millisecond instead of ``select()``; re-sending from the start (bytes
repeated); giving up on ``BlockingIOError`` (bytes lost); no deadline (``select()`` without a
timeout: hangs); a timeout per ``select()`` instead of a deadline; ``TimeoutError`` raised at
once, or with ``timeout=20`` while the reader reads; returning without ``TimeoutError``;
``except OSError`` that retries after a reset; returning the count instead of ``None``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import select
import socket
import sys
import threading
import time

from nbio_helpers.clients import close_with_reset
from nbio_helpers.exercises import NotYet, checker, describe_exception, judge, run_learner
from nbio_helpers.exercises.nb01 import ScriptedPeer
from nbio_helpers.exercises.watched import Calls, WatchedSocket, watch


# ------------------------------------------------------------------------ shared pieces
def reset(peer: ScriptedPeer) -> None:
    """Abort the connection from the far end (SO_LINGER 0, then close): the learner's next
    ``recv()`` raises ``ConnectionResetError``.

    (Local until ``ScriptedPeer.reset()`` lands in nb01; then this is ``peer.reset()``.)
    """
    close_with_reset(peer.far)


def _still_nonblocking(sock: socket.socket, name: str) -> None:
    if sock.gettimeout() != 0.0:
        raise NotYet(
            f"after {name}(), the socket is no longer non-blocking "
            f"(gettimeout() is {sock.gettimeout()!r}, it was 0.0)",
            "leave the socket's mode alone: handle BlockingIOError instead of "
            "switching to blocking or timeout mode.",
        )


def _mode_untouched(sock: WatchedSocket, name: str, situation: str, hint: str) -> None:
    modes = sock.calls.waiting_modes
    if modes:
        more = f" (and {len(modes) - 1:,} more such calls)" if len(modes) > 1 else ""
        raise NotYet(
            f"{situation}, {name}() called sock.{modes[0]}{more}: it switched the "
            "socket to a mode that waits (even if it switched back)",
            hint,
        )
    _still_nonblocking(sock, name)


def _name_of(fn) -> str:
    """How verdicts name the learner's function."""
    return getattr(fn, "__name__", "your function")


@dataclasses.dataclass
class Run:
    """One call of the learner's function: the harness's outcome, plus what it did."""

    value: object
    error: BaseException | None
    elapsed: float
    cpu: float
    """CPU seconds the learner's thread used during the call (nan if unknown)."""

    @property
    def cpu_share(self) -> float:
        return self.cpu / self.elapsed if self.elapsed > 0 else math.nan


def _run(fn, *args, limit: float, hang_hint, give_up=None) -> Run:
    """Call the learner's ``fn(*args)`` under the harness, timing its thread's CPU.

    ``hang_hint(run)`` gives the hint when the call did not return within ``limit`` (it can
    look at what the call did: its CPU, the watched socket's calls). Raises :class:`NotYet`
    for what no check accepts (:func:`~nbio_helpers.exercises.judge`).
    """
    name = _name_of(fn)
    used = {}

    def measured(*call_args):
        start = time.thread_time()  # the learner's own thread: portable, and exact
        try:
            return fn(*call_args)
        finally:
            used["cpu"] = time.thread_time() - start

    measured.__name__ = name
    outcome = run_learner(measured, *args, limit=limit, name=name, give_up=give_up)
    run = Run(outcome.value, outcome.error, outcome.elapsed, used.get("cpu", math.nan))
    hint = hang_hint(run) if outcome.timed_out else None
    judge(outcome, f"{name}()", limit=limit, hang_hint=hint)
    return run


# ----------------------------------------------------------------------- recv_nonblocking
RECV_SIZE = 65536
"""What the exercise tells the learner to ask for."""

BIG = 70_000
"""Bytes waiting in one check: more than :data:`RECV_SIZE`."""

WAIT_LIMIT = 0.05
"""Seconds a "not yet" call may take; a non-blocking recv() takes microseconds."""

RECV_LIMIT = 2.0
"""Seconds before the checker gives up on one call."""

RESET_HINT = (
    "catch only BlockingIOError; let ConnectionResetError (and any other OSError) "
    "reach the caller, which closes the socket."
)


def _recv_hang_hint(sock: WatchedSocket, situation: str):
    def hint(run: Run) -> str:
        calls = sock.calls
        if len(calls.recv) > 1:
            if situation == "finished":
                return (
                    f"it called recv() {len(calls.recv):,} times: once the peer has "
                    "finished, recv() returns b'' at once, every time; return it instead "
                    "of calling again."
                )
            return (
                f"it called recv() {len(calls.recv):,} times and never returned: a loop "
                "that retries until data comes spins. Try once, and return None at "
                "once if recv() raises BlockingIOError."
            )
        if calls.waiting_modes:
            return (
                f"it called sock.{calls.waiting_modes[0]}, so recv() waited for data: "
                "leave the socket non-blocking, catch BlockingIOError and return None."
            )
        if run.cpu_share > SPIN_SHARE:
            return (
                f"it kept a core busy ({run.cpu_share:.0%}) and never returned: a loop "
                "that never ends. Try recv() once and return what it says (None for "
                "BlockingIOError)."
            )
        return (
            "it waited (select() or a sleep?) instead of answering: on a non-blocking "
            "socket, try recv() once and return None at once if it raises BlockingIOError."
        )

    return hint


def _one_recv(sock: WatchedSocket, name: str, situation: str) -> None:
    """At most one recv() per call (rule 1)."""
    if len(sock.calls.recv) > 1:
        raise NotYet(
            f"{situation}, {name}() called recv() {len(sock.calls.recv):,} times in one call",
            "try once: one sock.recv(65536); if it raises BlockingIOError, return "
            "None at once, and let the caller decide when to try again.",
        )


def _call_recv(fn, sock: WatchedSocket, situation: str, state: str) -> Run:
    sock.calls = Calls()
    run = _run(fn, sock, limit=RECV_LIMIT, hang_hint=_recv_hang_hint(sock, state))
    name = _name_of(fn)
    _mode_untouched(
        sock,
        name,
        situation,
        "leave the socket's mode alone: a non-blocking recv() already returns at "
        "once; catch BlockingIOError instead of switching to blocking or timeout "
        "mode.",
    )
    _one_recv(sock, name, situation)
    return run


def _no_error(fn, run: Run, situation: str, hint: str) -> None:
    """Fail with ``hint`` if the call raised."""
    if run.error is not None:
        raise NotYet(f"{situation}, {_name_of(fn)}() raised {describe_exception(run.error)}", hint)


@checker
def check_recv_nonblocking(recv_nonblocking):
    """Check ``recv_nonblocking(sock)`` on a non-blocking socket in its four situations:
    nothing arrived yet (``None``), data waiting (the bytes, at most 65,536 at a time), the
    peer finished sending (``b''``), the peer reset the connection (``ConnectionResetError``
    let through). Verdict within about 20 s whatever the function does."""
    if not callable(recv_nonblocking):
        raise NotYet(
            f"expected a function, got {type(recv_nonblocking).__name__}",
            "pass the function itself: check_recv_nonblocking(recv_nonblocking).",
        )
    fn = recv_nonblocking
    with ScriptedPeer() as peer:
        sock = watch(peer)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * BIG)  # room for BIG bytes
        _expect_not_yet(fn, sock, "nothing was sent yet")

        data = bytes(range(256)) * (BIG // 256) + b"!" * (BIG % 256)
        peer.far.sendall(data)
        _wait_buffered(sock, BIG)
        _expect_data(fn, sock, data[:RECV_SIZE], f"with {BIG:,} bytes waiting")
        _expect_data(fn, sock, data[RECV_SIZE:], f"with the other {BIG - RECV_SIZE:,} waiting")
        _expect_not_yet(fn, sock, "everything sent had been read and nothing more came")

        peer.far.shutdown(socket.SHUT_WR)  # the peer has finished sending (a FIN)
        _wait_readable(sock)
        _expect_finished(fn, sock, "after the peer had finished sending")
        _still_usable(fn, sock, peer)
        _expect_finished(fn, sock, "after the peer had finished sending, again")

    with ScriptedPeer() as peer:
        sock = watch(peer)
        reset(peer)
        _wait_readable(sock)
        _expect_reset(fn, sock)
    return (
        "None while nothing had arrived, the data when it was there (65,536 bytes at a "
        "time), b'' once the peer had finished sending, and ConnectionResetError let "
        "through after a reset"
    )


def _wait_readable(sock: socket.socket, timeout: float = 2.0) -> None:
    """Wait until ``sock`` has data (or EOF, or an error) to read; the checker's own wait."""
    readable, _, _ = select.select([sock], [], [], timeout)
    if not readable:  # not the learner's fault: the machine is very slow
        raise NotYet(
            "the checker's peer did not deliver its data within 2 s", "run the checker cell again."
        )


def _wait_buffered(sock: WatchedSocket, size: int, timeout: float = 2.0) -> None:
    """Wait until ``size`` bytes sit in ``sock``'s receive buffer."""
    deadline = time.monotonic() + timeout
    while len(sock.peek(size)) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise NotYet(
                f"the checker's peer did not deliver its {size:,} bytes within {timeout:g} s",
                "run the checker cell again.",
            )
        select.select([sock], [], [], min(left, 0.01))


def _expect_not_yet(fn, sock: WatchedSocket, situation: str) -> None:
    situation = f"when {situation}"
    name = _name_of(fn)
    for _ in range(3):  # a busy machine can delay one quick call, not three in a row
        run = _call_recv(fn, sock, situation, "not yet")
        if isinstance(run.error, BlockingIOError):
            raise NotYet(
                f"{situation}, BlockingIOError escaped from {name}()",
                "catch it: `except BlockingIOError: return None` — on a non-blocking "
                "socket it only means 'no data yet, try later'.",
            )
        _no_error(fn, run, situation, "catch BlockingIOError (no data yet) and return None.")
        if run.value == b"":
            raise NotYet(
                f"{situation}, {name}() returned b''",
                "b'' means 'the peer has finished sending'; 'no data yet' must look "
                "different: return None.",
            )
        if run.value is not None:
            raise NotYet(
                f"{situation}, {name}() returned {run.value!r} instead of None",
                "return None when recv() raises BlockingIOError.",
            )
        if run.elapsed <= WAIT_LIMIT:
            return
    raise NotYet(
        f"{situation}, {name}() took {run.elapsed:.2f} s to return None: it waited",
        "never wait: no select() with a timeout, no sleep. Try recv() once and "
        "return None at once if it raises BlockingIOError; the caller decides when "
        "to try again.",
    )


def _expect_data(fn, sock: WatchedSocket, expected: bytes, situation: str) -> None:
    run = _call_recv(fn, sock, situation, "data")
    name = _name_of(fn)
    _no_error(fn, run, situation, "return what sock.recv(65536) returns when it returns.")
    value = run.value
    if isinstance(value, (bytes, bytearray)) and bytes(value) != expected:
        asked = sock.calls.recv[0] if sock.calls.recv else None
        got = len(value)
        if asked is not None and asked != RECV_SIZE:
            raise NotYet(
                f"{situation}, {name}() asked for recv({asked:,}) and returned {got:,} bytes",
                "ask for up to 65536 bytes: sock.recv(65536).",
            )
        raise NotYet(
            f"{situation}, {name}() returned {got:,} bytes, expected the "
            f"{len(expected):,} that one recv(65536) returns",
            "call sock.recv(65536) once and return its result as it is.",
        )
    if value != expected:
        raise NotYet(
            f"{situation}, {name}() returned {_short(value)}, expected bytes",
            "return what sock.recv(65536) returns, as it is (bytes: no decoding).",
        )


def _expect_finished(fn, sock: WatchedSocket, situation: str) -> None:
    run = _call_recv(fn, sock, situation, "finished")
    name = _name_of(fn)
    _no_error(
        fn, run, situation, "once the peer has finished sending, recv() returns b'': return it."
    )
    if run.value != b"":
        raise NotYet(
            f"{situation}, {name}() returned {_short(run.value)} instead of b''",
            "recv() returns b'' when the peer has finished sending: return it as it "
            "is, so that the caller can tell 'finished' (b'') from 'not yet' (None).",
        )


def _still_usable(fn, sock: WatchedSocket, peer: ScriptedPeer) -> None:
    """After b'', the connection is still open one way: the caller may send its answer."""
    name = _name_of(fn)
    try:
        sock.sendall(b"last words")
        peer.far.settimeout(2.0)
        heard = peer.far.recv(64)
    except OSError:
        heard = b""
    if heard != b"last words":
        raise NotYet(
            f"after b'', the checker could no longer send on the socket: {name}() shut it down",
            "b'' only says the peer will send nothing more; it may still read. "
            "Return b'' and leave the socket to the caller, who sends what it owes, "
            "then closes.",
        )


def _expect_reset(fn, sock: WatchedSocket) -> None:
    """After the peer reset the connection, ``fn(sock)`` must let ConnectionResetError out."""
    situation = "after the peer reset the connection"
    run = _call_recv(fn, sock, situation, "reset")
    name = _name_of(fn)
    if isinstance(run.error, ConnectionResetError):
        return
    if run.error is not None:
        raise NotYet(
            f"{situation}, {name}() raised {describe_exception(run.error)} instead of "
            "letting ConnectionResetError through",
            RESET_HINT,
        )
    if run.value is None:
        raise NotYet(
            f"{situation}, {name}() returned None ('not yet'): its caller would wait "
            "forever on a broken connection",
            RESET_HINT,
        )
    if run.value == b"":
        raise NotYet(
            f"{situation}, {name}() returned b'', as if the peer had finished normally",
            "a reset is not an end of stream: bytes may have been lost and the peer "
            "reads nothing more. " + RESET_HINT[0].upper() + RESET_HINT[1:],
        )
    raise NotYet(f"{situation}, {name}() returned {_short(run.value)}", RESET_HINT)


def _short(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# -------------------------------------------------------------------- send_all_nonblocking
PAYLOAD_SIZE = 8 * 1024 * 1024
SMALL_BUFFER = 16 * 1024
"""SO_SNDBUF of the learner's socket and SO_RCVBUF of the reader: many partial sends."""

SEND_TIMEOUT = 0.5
"""The ``timeout`` given to the learner's function where ``TimeoutError`` is expected."""

STALL = 3.0
"""Seconds without a byte reaching the (always reading) reader: the sender is stuck."""

SPIN_ATTEMPTS = 100
"""Failed ``send()`` calls (and ``select()`` looks at the socket, counted by its ``fileno()``
calls) allowed during :data:`SEND_TIMEOUT` with a peer that never reads
(the reference makes 2 to 4: one before ``select()`` sleeps, one after it timed out, and on
Linux one or two when the kernel frees a little room once, some 50-150 ms after the buffers
filled)."""

SPIN_SHARE = 0.2
"""Share of a core the learner's thread may use while the peer never reads. Measured on a
2-core machine: the reference 0.001 (it sleeps in ``select()``), a ``time.sleep(0.001)`` loop
0.02-0.03, a busy loop 1.0 when the machine is quiet but only 0.2-0.7 when other processes
keep the cores busy. So the counts above are the main evidence of a busy loop, and the CPU
share the evidence for one that calls neither ``send()`` nor ``select()`` on the socket; a
correct solution's share does not grow with the load."""

TRICKLE_SIZE = 16 * 1024
TRICKLE_PAUSE = 0.1
"""The trickling reader: reads :data:`TRICKLE_SIZE` bytes every :data:`TRICKLE_PAUSE`
seconds, so the learner's socket becomes writable again and again within any timeout."""

RESET_DELAY = 0.1
"""Seconds after the learner's call starts (the buffers full) at which the peer aborts."""

RESET_TIMEOUT = 3.0

SEND_GRACE = 2.5
"""Seconds past the learner's own ``timeout`` before the checker gives up on a call."""

SEND_HANG_HINT = (
    "wait for room with select.select([], [sock], [], time_left): never without "
    "a timeout, and give up with TimeoutError once the deadline has passed."
)

DEADLINE_HINT = (
    "the timeout is for the whole call, not for each select(): a reader that "
    "makes a little room every 0.1 s never lets a per-select() timeout expire. "
    "Compute deadline = time.monotonic() + timeout once; on BlockingIOError, "
    "raise TimeoutError if deadline - time.monotonic() <= 0, else wait with "
    "select() for that time left."
)

SPIN_HINT = (
    "on BlockingIOError, wait until there is room with "
    "select.select([], [sock], [], time_left) instead of trying again at once: "
    "select() sleeps, using no CPU, until the socket is writable or time is up."
)


def payload(size: int = PAYLOAD_SIZE) -> bytes:
    """``size`` bytes that differ along the way, so a lost or repeated piece is noticed."""
    block = bytes(range(256)) * 256 + b"!"  # 65537 bytes: not aligned to any buffer
    return (block * (size // len(block) + 1))[:size]


class SlowReader:
    """Reads ``sock`` in a thread, pausing after every ``recv`` (a slow consumer).

    Parameters
    ----------
    sock:
        The far end of the connection.
    pause:
        Seconds to wait after each ``recv()``.
    size:
        Bytes asked for by each ``recv()``.
    """

    def __init__(self, sock: socket.socket, pause: float = 0.001, size: int = 65536):
        self.sock = sock
        self.pause = pause
        self.size = size
        self.received = bytearray()
        self.last_progress = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="check-slow-reader")
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                chunk = self.sock.recv(self.size)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            self.received += chunk
            self.last_progress = time.monotonic()
            self._stop.wait(self.pause)

    def wait_received(self, size: int, quiet: float = 0.5, limit: float = 10.0) -> int:
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
            return (
                f"made no progress: not a byte had arrived for {seconds:g} s "
                f"({len(self.received):,} bytes so far)"
            )
        return ""

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)


@checker
def check_send_all_nonblocking(send_all_nonblocking):
    """Check ``send_all_nonblocking(sock, data, timeout)`` against four readers: a slow one
    (8 MiB through small buffers arrive whole), one that never reads (``TimeoutError`` after
    about ``timeout``, without spinning), one that trickles (the timeout is a deadline), one
    that resets the connection (the error comes out). Verdict within about 40 s."""
    if not callable(send_all_nonblocking):
        raise NotYet(
            f"expected a function, got {type(send_all_nonblocking).__name__}",
            "pass the function itself: check_send_all_nonblocking(send_all_nonblocking).",
        )
    _big_send(send_all_nonblocking)
    never_read(send_all_nonblocking)
    trickled = ""
    if sys.platform != "win32":  # Winsock takes a whole send() once there is any room
        _trickle(send_all_nonblocking)
        trickled = ", and so did one that read a little now and then"
    _reset_midway(send_all_nonblocking)
    return (
        "8 MiB arrived byte for byte through small buffers; a peer that never read gave "
        f"TimeoutError in time, without spinning{trickled}; a reset came out as an error"
    )


@contextlib.contextmanager
def _small_buffers():
    """A :class:`~nbio_helpers.exercises.nb01.ScriptedPeer` with :data:`SMALL_BUFFER` on both
    sides; yields ``(peer, sock)``, ``sock`` its learner's end, watched."""
    with ScriptedPeer(sndbuf=SMALL_BUFFER, rcvbuf=SMALL_BUFFER) as peer:
        yield peer, watch(peer)


def _send_rules(fn, sock: WatchedSocket, situation: str) -> None:
    """No sendall(), no mode that waits, still non-blocking (rules 4)."""
    name = _name_of(fn)
    if sock.calls.sendall:
        raise NotYet(
            f"{situation}, {name}() called sendall()",
            "sendall() on a non-blocking socket raises BlockingIOError as soon as the "
            "buffer is full, and then nobody knows how much went out (and in "
            "blocking or timeout mode it waits): use send(), keep the count, wait "
            "with select().",
        )
    _mode_untouched(
        sock,
        name,
        situation,
        "leave the socket non-blocking: use send(), and wait for room with "
        "select.select([], [sock], [], time_left).",
    )


def _send(
    fn,
    sock: WatchedSocket,
    data: bytes,
    timeout: float,
    *,
    hang_hint,
    situation: str,
    limit: float | None = None,
    give_up=None,
) -> Run:
    """Call ``fn(sock, data, timeout)``: the checker gives up ``limit`` seconds after the
    start (default: :data:`SEND_GRACE` after the learner's own ``timeout``)."""
    sock.calls = Calls()
    run = _run(
        fn,
        sock,
        data,
        timeout,
        limit=timeout + SEND_GRACE if limit is None else limit,
        give_up=give_up,
        hang_hint=lambda run: _send_hang_hint(sock, run, hang_hint),
    )
    _send_rules(fn, sock, situation)
    return run


def _send_hang_hint(sock: WatchedSocket, run: Run, hint: str) -> str:
    if sock.calls.sendall or sock.calls.waiting_modes:
        what = "sendall()" if sock.calls.sendall else f"sock.{sock.calls.waiting_modes[0]}"
        return (
            f"it called {what}, which waits for the peer: on the non-blocking socket use "
            "send(), and wait with select() for the time left."
        )
    if run.cpu_share > SPIN_SHARE:
        return f"it used {run.cpu_share:.0%} of a core: it spins. " + SPIN_HINT
    return hint


def _big_send(fn) -> None:
    data = payload()
    situation = f"sending {len(data):,} bytes to a slow reader"
    with _small_buffers() as (peer, sock):
        reader = SlowReader(peer.far)
        try:
            run = _send(
                fn,
                sock,
                data,
                20.0,
                limit=25.0,
                hang_hint=SEND_HANG_HINT,
                situation=situation,
                give_up=lambda: reader.stalled(STALL),
            )
            count = reader.wait_received(len(data))
        finally:
            reader.stop()
        if run.error is not None:
            _explain_send_error(run.error, count, len(data), fn)
        got = bytes(reader.received)
    name = _name_of(fn)
    if len(got) < len(data):
        raise NotYet(
            f"{name}() returned, but the reader received only {len(got):,} of "
            f"{len(data):,} bytes: the rest was lost",
            "send() takes only what fits in the send buffer and returns how many "
            "bytes it took: keep sending the rest, data[sent:], until nothing is left.",
        )
    if len(got) > len(data) or hashlib.sha256(got).digest() != hashlib.sha256(data).digest():
        raise NotYet(
            f"the reader received {len(got):,} bytes for {len(data):,} sent, and they "
            "are not the bytes sent: some were sent twice or out of order",
            "after a partial send, continue from where send() stopped (data[sent:]); "
            "after BlockingIOError nothing was sent, so retry the same bytes.",
        )
    if run.value is not None:
        raise NotYet(
            f"every byte arrived, but {name}() returned {_short(run.value)} instead of None",
            "return None (just return) once everything is sent.",
        )


def _explain_send_error(error: BaseException, count: int | None, size: int, fn) -> None:
    name = _name_of(fn)
    if isinstance(error, BlockingIOError):
        arrived = "" if count is None else f" after {count:,} of {size:,} bytes had arrived"
        raise NotYet(
            f"BlockingIOError escaped from {name}(){arrived}",
            "an unguarded send() on a non-blocking socket raises BlockingIOError as "
            "soon as the buffer is full. Catch it, and wait with select() before "
            "trying again.",
        )
    if isinstance(error, TimeoutError):
        raise NotYet(
            f"{name}() raised TimeoutError with timeout=20 although the reader "
            f"was reading ({count:,} of {size:,} bytes arrived)",
            "compute the deadline once (time.monotonic() + timeout) and compare "
            "against it; wait with select() for the time left.",
        )
    raise NotYet(
        f"{name}() raised {describe_exception(error)} after {count:,} of {size:,} "
        "bytes had reached the reader",
        "read the error message; only BlockingIOError means 'try again later'.",
    )


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
            total += socket.socket.send(sock, chunk)  # around a WatchedSocket's count
        except BlockingIOError:
            return total
    raise RuntimeError(f"the buffers did not fill up after {total:,} bytes")


def _timed_out(fn, run: Run, situation: str, data_size: int, hint: str) -> None:
    """The call must have raised TimeoutError, after about SEND_TIMEOUT."""
    name = _name_of(fn)
    if run.error is None:
        raise NotYet(
            f"{situation}, so the {data_size:,} bytes could not all be sent; "
            f"{name}() returned as if they had been",
            "when the deadline passes with bytes still unsent, raise TimeoutError "
            "(say how many went out).",
        )
    if isinstance(run.error, BlockingIOError):
        _explain_send_error(run.error, None, data_size, fn)
    if not isinstance(run.error, TimeoutError):
        raise NotYet(
            f"{situation}, {name}() raised {describe_exception(run.error)} instead of TimeoutError",
            "when the deadline passes with bytes still unsent, raise TimeoutError.",
        )
    if run.elapsed < 0.8 * SEND_TIMEOUT:
        raise NotYet(
            f"{situation}, with timeout={SEND_TIMEOUT}, {name}() gave up after only "
            f"{run.elapsed:.2f} s",
            "BlockingIOError means 'not now', not 'never': wait for room with "
            "select() for the time left, and raise TimeoutError only once the "
            "deadline has passed.",
        )
    if run.elapsed > SEND_TIMEOUT + 1.0:
        raise NotYet(
            f"{situation}, with timeout={SEND_TIMEOUT}, TimeoutError came only after "
            f"{run.elapsed:.1f} s",
            hint,
        )


def never_read(fn) -> None:
    data = payload()
    situation = "the peer never read and the buffers were already full"
    name = _name_of(fn)
    with _small_buffers() as (_, sock):
        fill_buffers(sock)  # the far end never reads: no room is left
        run = _send(
            fn,
            sock,
            data,
            SEND_TIMEOUT,
            hang_hint=SEND_HANG_HINT,
            situation=situation,
        )
        attempts, looks = sock.calls.would_block, sock.calls.fileno
    _timed_out(fn, run, situation, len(data), SEND_HANG_HINT)
    if attempts > SPIN_ATTEMPTS or looks > SPIN_ATTEMPTS or run.cpu_share > SPIN_SHARE:
        busy = (
            run.cpu_share > SPIN_SHARE
            or attempts > 10 * SPIN_ATTEMPTS
            or looks > 10 * SPIN_ATTEMPTS
        )
        times = "once" if attempts == 1 else f"{attempts:,} times"
        polled = f", select() looked at the socket {looks:,} times" if looks > SPIN_ATTEMPTS else ""
        raise NotYet(
            f"{situation}: in {run.elapsed:.1f} s {name}() tried send() {times} "
            f"while there was no room (BlockingIOError){polled}, and used "
            f"{run.cpu_share:.0%} of a core: it {'spins' if busy else 'polls'} "
            "instead of waiting for room",
            SPIN_HINT,
        )


def _trickle(fn) -> None:
    data = payload()
    situation = (
        f"the peer read {TRICKLE_SIZE // 1024} KiB every {TRICKLE_PAUSE:g} s "
        f"(too slow for {len(data):,} bytes in {SEND_TIMEOUT:g} s)"
    )
    with _small_buffers() as (peer, sock):
        reader = SlowReader(peer.far, pause=TRICKLE_PAUSE, size=TRICKLE_SIZE)
        try:
            run = _send(
                fn,
                sock,
                data,
                SEND_TIMEOUT,
                hang_hint=DEADLINE_HINT,
                situation=situation,
            )
        finally:
            reader.stop()
        got = bytes(reader.received)
    _timed_out(fn, run, situation, len(data), DEADLINE_HINT)
    if got != data[: len(got)]:
        raise NotYet(
            f"{situation}: the {len(got):,} bytes that arrived are not the start of "
            "the data: some were sent twice or skipped",
            "after a partial send, continue from where send() stopped (data[sent:]); "
            "after BlockingIOError nothing was sent, so retry the same bytes.",
        )


def _reset_midway(fn) -> None:
    data = payload()
    situation = "the peer reset the connection while the buffers were full"
    name = _name_of(fn)
    with _small_buffers() as (peer, sock):
        fill_buffers(sock)  # no room: the learner's function is waiting...
        aborter = threading.Timer(RESET_DELAY, reset, [peer])  # ...when the reset comes
        aborter.name = "check-reset"
        aborter.start()
        try:
            run = _send(
                fn,
                sock,
                data,
                RESET_TIMEOUT,
                hang_hint=SEND_HANG_HINT,
                situation=situation,
            )
        finally:
            aborter.cancel()
            aborter.join(2.0)
    if isinstance(run.error, ConnectionError):
        return
    if run.error is None:
        raise NotYet(
            f"{situation}, {name}() returned as if everything had been sent",
            "let the error of send() (ConnectionResetError, BrokenPipeError) reach "
            "the caller: catch only BlockingIOError.",
        )
    if isinstance(run.error, TimeoutError):
        raise NotYet(
            f"{situation}; send() then raised ConnectionResetError or "
            f"BrokenPipeError, but {name}() kept trying until its timeout",
            "catch only BlockingIOError ('not now'); any other OSError means the "
            "connection is broken: let it reach the caller.",
        )
    raise NotYet(
        f"{situation}, {name}() raised {describe_exception(run.error)} instead of "
        "letting send()'s ConnectionError through",
        "catch only BlockingIOError; let any other OSError reach the caller.",
    )


__all__ = [
    "SMALL_BUFFER",
    "SPIN_ATTEMPTS",
    "SlowReader",
    "check_recv_nonblocking",
    "check_send_all_nonblocking",
    "fill_buffers",
    "never_read",
    "payload",
    "reset",
]
