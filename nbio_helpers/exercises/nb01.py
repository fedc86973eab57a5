"""Checkers for notebook 01 (blocking recv).

* :func:`check_recv_exactly_timeout` — the learner writes
  ``recv_exactly_timeout(sock, n, timeout)``; the checker runs it on real TCP connections
  whose far end sends slowly, closes early, resets, stalls, trickles one byte at a time,
  trickles then stalls, or reaches it only after its deadline, and watches what it does with
  the socket (:class:`WatchedSocket`: bytes read, ``recv()`` calls, the timeout left). Its
  rules are listed in its docstring, the wrong answers it rejects in
  ``tests/test_exercises_nb01.py``.
* :func:`check_why_second_client_waited` — a multiple-choice question about the timeline of
  the one-client-at-a-time server: ``answer()`` returns a letter; every choice gets an
  explanation, every answer that is not one letter a hint saying what it is instead.

Usage in the notebook::

    from nbio_helpers.exercises.nb01 import check_recv_exactly_timeout
    check_recv_exactly_timeout(recv_exactly_timeout)

:class:`ScriptedPeer` (a connection whose far end follows a script, and can close or reset
it) is reused by the checkers of notebook 02.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import socket
import struct
import sys
import threading
import time

from nbio_helpers.exercises import (
    NotYet,
    Outcome,
    answer_of,
    checker,
    describe_exception,
    requires_exercise,
    try_learner,
    zombies,
)

HANG_UP = "hang up"
"""In a :class:`ScriptedPeer` script: close the far end (the learner then reads ``b''``)."""

RESET = "reset"
"""In a :class:`ScriptedPeer` script: abort the connection from the far end (see
:meth:`ScriptedPeer.reset`; the learner's next ``recv()`` raises ``ConnectionResetError``)."""

_peers = itertools.count(1)


class WatchedSocket(socket.socket):
    """A real socket that counts what the code using it does: for checkers.

    :attr:`recv_calls` counts ``recv()``/``recv_into()`` calls, :attr:`bytes_read` the bytes
    they consumed (``MSG_PEEK`` consumes none), :attr:`timeouts_set` lists the values given
    to ``settimeout()`` (and ``setblocking()``, as ``None`` or ``0.0``). :meth:`forget`
    starts the counts again. If :attr:`late_return` is a number, the first call that gets
    data returns only that many seconds after it was called (a thread scheduled late).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.late_return: float | None = None
        self.forget()

    def forget(self) -> None:
        """Reset the counts."""
        self.recv_calls = 0
        self.bytes_read = 0
        self.timeouts_set: list = []

    def _got(self, called: float, size: int, flags: int) -> None:
        if not flags & socket.MSG_PEEK:
            self.bytes_read += size
        if size and self.late_return is not None:
            until, self.late_return = called + self.late_return, None
            while time.monotonic() < until:  # short sleeps: the harness can stop it
                time.sleep(0.005)

    def recv(self, bufsize, flags=0):
        self.recv_calls += 1
        called = time.monotonic()
        data = super().recv(bufsize, flags)
        self._got(called, len(data), flags)
        return data

    def recv_into(self, buffer, nbytes=0, flags=0):
        self.recv_calls += 1
        called = time.monotonic()
        size = super().recv_into(buffer, nbytes, flags)
        self._got(called, size, flags)
        return size

    def settimeout(self, value):
        self.timeouts_set.append(value)
        super().settimeout(value)

    def setblocking(self, flag):
        self.timeouts_set.append(None if flag else 0.0)
        super().setblocking(flag)


class ScriptedPeer:
    """A real TCP connection on 127.0.0.1 whose far end follows a script, in a thread.

    Script items: ``bytes`` are sent, a number is a pause in seconds, :data:`HANG_UP` closes
    the far end, :data:`RESET` aborts the connection from it (:meth:`reset`). After the
    script the far end stays open and silent (a stalled peer) until the ``with`` block ends.
    Leaving the block ends the script at once, shuts down and closes both ends (which also
    frees a learner's call still blocked on :attr:`sock`)::

        with ScriptedPeer([b"ab", 0.05, b"cd", HANG_UP]) as peer:
            peer.sock.recv(10)          # b'ab'; the learner's end: blocking, no timeout

        with ScriptedPeer() as peer:
            peer.reset()                # the far end aborts the connection
            peer.sock.recv(10)          # raises ConnectionResetError

    Parameters
    ----------
    script:
        What the far end does, in order.
    sndbuf:
        ``SO_SNDBUF`` of the learner's end (set before ``connect``), to make buffers small.
    rcvbuf:
        ``SO_RCVBUF`` of the far end (set on the listener, inherited by the accepted socket).
    watched:
        Make the learner's end a :class:`WatchedSocket` (what the learner's code does with
        it is counted).
    """

    def __init__(
        self,
        script=(),
        *,
        sndbuf: int | None = None,
        rcvbuf: int | None = None,
        watched: bool = False,
    ):
        self.script = list(script)
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        listener = socket.create_server(("127.0.0.1", 0))
        try:
            if rcvbuf is not None:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock = WatchedSocket() if watched else socket.socket()
            if sndbuf is not None:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            self.sock.settimeout(5.0)
            self.sock.connect(listener.getsockname())
            self.sock.settimeout(None)  # the learner decides about timeouts
            listener.settimeout(5.0)
            self.far, _ = listener.accept()
        finally:
            listener.close()
        self._thread = threading.Thread(
            target=self._run, daemon=True, name=f"check-peer-{next(_peers)}"
        )

    def __enter__(self) -> ScriptedPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _run(self) -> None:
        try:
            for step in self.script:
                if self.stopping.is_set():
                    return
                if step == HANG_UP:
                    self.far.close()
                    return
                if step == RESET:
                    _close_with_reset(self.far)
                    return
                if isinstance(step, (bytes, bytearray)):
                    self.far.sendall(step)
                else:
                    self.stopping.wait(step)
        except OSError as exc:  # the learner closed its end: the script just ends
            self.error = exc

    def reset(self) -> None:
        """Abort the connection from the far end: end the script, then close the far end
        with ``SO_LINGER`` set to 0, so that the kernel sends a reset (RST) instead of an
        orderly end (FIN). The learner's next ``recv()`` on :attr:`sock` raises
        ``ConnectionResetError`` (on Linux, once it has read the bytes that arrived before
        the reset), then ``b''``. :meth:`close` still cleans up afterwards."""
        self.stopping.set()
        if self._thread.ident is not None:  # started: let the script end first
            self._thread.join(2.0)
        _close_with_reset(self.far)

    def close(self) -> None:
        """End the script, then shut down and close both ends."""
        self.stopping.set()
        for sock in (self.sock, self.far):
            try:
                sock.shutdown(socket.SHUT_RDWR)  # frees a recv()/send() blocked on it
            except OSError:
                pass
        if self._thread.ident is not None:  # started (not a peer used without `with`)
            self._thread.join(2.0)
        # Closed after the shutdown: a learner's loop that keeps calling recv() on the dead
        # socket now gets an OSError and ends, instead of spinning on b'' forever.
        self.sock.close()
        self.far.close()


def _close_with_reset(sock: socket.socket) -> None:
    """Close ``sock`` so that the peer gets a reset (RST) instead of an orderly end (FIN)."""
    # struct linger: two ints on Unix (socket(7)), two u_shorts on Windows (winsock2.h)
    linger = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    except OSError:  # already closed (or shut down by close()): nothing left to abort
        pass
    sock.close()


def run_learner(fn, *args, limit: float, hang_hint: str, give_up=None) -> Outcome:
    """Run ``fn(*args)`` under the harness for at most ``limit`` seconds; return its
    :class:`~nbio_helpers.exercises.harness.Outcome` (a value, or an ``Exception`` to judge:
    ``TimeoutError`` may be the right answer). Raises :class:`NotYet` for the stub, a
    ``BaseException``, a socket it closed, and with ``hang_hint`` if it did not return in time.
    """
    return try_learner(fn, *args, limit=limit, hang_hint=hang_hint, give_up=give_up)


def _show(data, limit: int = 30) -> str:
    """A short repr of what the learner's function returned."""
    if not isinstance(data, (bytes, bytearray)):
        return repr(data)[:limit]
    text = repr(bytes(data[:limit]))
    return text + ("..." if len(data) > limit else "")


# ----------------------------------------------------------------- recv_exactly_timeout
MESSAGE = b"slow and steady wins the race"
"""What the far end sends, 4 bytes at a time, in the first check."""

EXTRA = b"<next message>"
"""Sent right after :data:`MESSAGE`: it belongs to the next message and must stay unread."""

SHORT_TIMEOUT = 0.5
"""The ``timeout`` given to the learner's function where a TimeoutError is expected."""

LATE = 0.25
"""Seconds past its deadline after which a ``TimeoutError`` counts as late (a right answer
raises within milliseconds of it; the mistakes this catches are 0.4 s late or more)."""

GIVEN_TIMEOUT = 30.0
"""The timeout the socket already has in the first check: it must be put back."""

MAX_WAKEUPS = 20
"""``recv()`` calls allowed while waiting :data:`SHORT_TIMEOUT` for bytes that never come
(a right answer makes 2: one gets the first bytes, one times out)."""

MAX_CPU_SHARE = 0.5
"""Share of a core the kernel's process may use while the function waits for a stalled peer
(a right answer: about 0.01; a busy loop: up to 1)."""

HANG_HINT = (
    "a recv() without a timeout waits forever for a peer that stalls: call "
    "sock.settimeout(...) before recv(), so that it raises TimeoutError instead."
)

DEADLINE_HINT = (
    "the timeout is for the whole call, not for each recv(): a peer sending one "
    "byte every 50 ms never lets a per-recv() timeout expire. Compute "
    "deadline = time.monotonic() + timeout once, and before each recv() call "
    "sock.settimeout(deadline - time.monotonic()) (raise TimeoutError yourself "
    "if that is <= 0)."
)

TIME_UP_HINT = (
    "the time can run out between two recv() calls: compute left = deadline - "
    "time.monotonic() before each one, and if left <= 0 raise TimeoutError "
    "yourself."
)

RESTORE_HINT = (
    "the socket is the caller's: note old = sock.gettimeout() at the start and put "
    "it back with sock.settimeout(old) in a finally: block, which runs whether "
    "you return or raise."
)

READ_AHEAD_HINT = (
    "ask recv() only for the bytes still missing, recv(n - received): what "
    "you read past n is gone from the socket, and the caller's next read "
    "misses it."
)

SPIN_HINT = (
    "let recv() do the waiting: give it the whole time left, "
    "sock.settimeout(deadline - time.monotonic()), and it sleeps until bytes come "
    "or the time is up, using no CPU."
)

CLOSED_HINT = (
    "recv() returning b'' means the peer closed: the missing bytes will never "
    "come, so raise ConnectionError."
)

RESET_HINT = (
    "a reset is a broken connection, and the caller must hear of it: do not catch "
    "ConnectionResetError (nor OSError) around recv(); let it through."
)


@checker
def check_recv_exactly_timeout(recv_exactly_timeout):
    """Check ``recv_exactly_timeout(sock, n, timeout)`` against seven real peers.

    The rules of exercise 1 (notebook 01), each checked:

    1. it returns ``bytes``: exactly the ``n`` bytes sent, in order;
    2. it reads no more than ``n`` bytes from the socket (the next message stays there);
    3. it returns as soon as it has the ``n`` bytes, not at the deadline;
    4. ``timeout`` bounds the whole call: ``TimeoutError``, neither early nor late, from a
       peer that stalls, from one that trickles a byte every 50 ms, from one that trickles
       then stalls, and when the time ran out between two ``recv()`` calls;
    5. never part of a message: no value is returned when the time is up;
    6. ``ConnectionError`` when the peer closes first (``recv()`` returns ``b''``); a
       reset (``ConnectionResetError``) is let through;
    7. it waits inside ``recv()``: no loop that wakes up again and again, no busy CPU;
    8. the socket's timeout is put back as it was given (30 s in the first check, none in
       the others), whether the function returns or raises.

    The typical mistakes each rule catches, with the hint each gets, are listed and tested in
    ``tests/test_exercises_nb01.py``.
    """
    if not callable(recv_exactly_timeout):
        raise NotYet(
            f"expected a function, got {type(recv_exactly_timeout).__name__}",
            "pass the function itself: check_recv_exactly_timeout(recv_exactly_timeout).",
        )
    fn = recv_exactly_timeout
    _slow_sender(fn)
    _early_close(fn)
    _reset_peer(fn)
    _stalled_peer(fn)
    _trickling_peer(fn)
    _trickle_then_stall(fn)
    _late_wakeup(fn)
    return (
        "exactly the 29 bytes of a slow sender, not one more read from the socket; "
        "TimeoutError on time from peers that stalled, trickled, or woke you up late, "
        "without busy waiting; ConnectionError from one that closed early and from one "
        "that reset; the socket's timeout put back every time"
    )


@dataclasses.dataclass
class _Run:
    """What the learner's function did in one check: its outcome, and what the watched
    socket saw (bytes read, recv() calls, the timeout it was left with)."""

    out: Outcome
    bytes_read: int
    recv_calls: int
    timeout_after: float | None
    cpu_share: float


def _run(fn, script, n, timeout, *, limit, hang_hint, given=None, late_return=None) -> _Run:
    """Run the learner's ``fn(sock, n, timeout)`` against a peer following ``script``; the
    socket's timeout is ``given`` before the call. ``late_return``: the first ``recv()``
    that gets data returns only that many seconds after it was called."""
    with ScriptedPeer(script, watched=True) as peer:
        sock = peer.sock
        assert isinstance(sock, WatchedSocket)  # watched=True
        sock.settimeout(given)
        sock.forget()
        sock.late_return = late_return
        cpu, wall = time.process_time(), time.monotonic()
        out = run_learner(fn, sock, n, timeout, limit=limit, hang_hint=hang_hint)
        share = (time.process_time() - cpu) / max(time.monotonic() - wall, 1e-6)
        return _Run(out, sock.bytes_read, sock.recv_calls, sock.gettimeout(), share)


def _check_restored(run: _Run, given, situation: str) -> None:
    now = run.timeout_after
    if now == given:
        return
    had = "none (blocking)" if given is None else f"a timeout of {given:g} s"
    left = (
        "no timeout (blocking)"
        if now is None
        else "timeout 0 (non-blocking)"
        if now == 0
        else f"a timeout of {now:.2g} s"
    )
    raise NotYet(
        f"{situation}, your function left the socket with {left}; it was given with {had}",
        RESTORE_HINT,
    )


def _expect_timeout(
    run: _Run,
    situation: str,
    *,
    after: float,
    wrong_hint: str,
    late_hint: str | None = None,
    before_timing=None,
) -> None:
    """The outcome must be a TimeoutError raised ``after`` seconds or a little later.
    ``before_timing(run, situation)`` checks more (the CPU...) before the timing is judged."""
    out = run.out
    if out.error is None:
        raise NotYet(
            f"{situation}, your function returned {_show(out.value)} instead of "
            "raising TimeoutError",
            "when the time is up, raise TimeoutError: returning part of a message "
            "would let the caller believe it has a whole one.",
        )
    if isinstance(out.error, BlockingIOError):
        raise NotYet(
            f"{situation}, your function raised {describe_exception(out.error)}: "
            "it had made the socket non-blocking, probably with settimeout(0)",
            "settimeout(0) does not mean 'no time left' but 'never wait' (notebook "
            "02): " + TIME_UP_HINT,
        )
    if isinstance(out.error, ValueError) and "timeout" in str(out.error).lower():
        raise NotYet(
            f"{situation}, your function raised {describe_exception(out.error)}: "
            "settimeout() refuses a negative time",
            TIME_UP_HINT,
        )
    if not isinstance(out.error, TimeoutError):
        raise NotYet(
            f"{situation}, your function raised {describe_exception(out.error)} "
            "instead of TimeoutError",
            wrong_hint,
        )
    if before_timing is not None:
        before_timing(run, situation)
    if out.elapsed < after - 0.2 * SHORT_TIMEOUT:
        raise NotYet(
            f"{situation}, your function gave up after only {out.elapsed:.2f} s, "
            f"before its timeout",
            "wait for the whole timeout before raising TimeoutError: settimeout() takes seconds.",
        )
    if out.elapsed > after + LATE:
        raise NotYet(
            f"{situation}, TimeoutError came only after {out.elapsed:.2f} s, "
            f"{out.elapsed - after:.2f} s late",
            late_hint or wrong_hint,
        )


def _not_spinning(run: _Run, situation: str) -> None:
    if run.recv_calls > MAX_WAKEUPS:
        raise NotYet(
            f"{situation}; your function called recv() {run.recv_calls} times in "
            f"{SHORT_TIMEOUT} s while nothing came: it kept waking up",
            SPIN_HINT,
        )
    if run.cpu_share > MAX_CPU_SHARE and not zombies():  # (a zombie's CPU is not this code's)
        raise NotYet(
            f"{situation}; while it waited, your function used "
            f"{run.cpu_share:.0%} of a core: it kept busy instead of sleeping",
            SPIN_HINT,
        )


def _slow_sender(fn) -> None:
    chunks = [MESSAGE[start : start + 4] for start in range(0, len(MESSAGE), 4)]
    chunks[-1] += EXTRA  # in the same segment: a recv() too big would take some of it
    script = []
    for chunk in chunks:
        script += [chunk, 0.03]
    n = len(MESSAGE)
    run = _run(fn, script, n, 3.0, limit=5.0, hang_hint=HANG_HINT, given=GIVEN_TIMEOUT)
    out, read = run.out, run.bytes_read
    if out.error is not None:
        if read > n:
            raise NotYet(
                f"asked for {n} bytes, your function read {read} from the socket, "
                f"then raised {describe_exception(out.error)}",
                READ_AHEAD_HINT,
            )
        if isinstance(out.error, TimeoutError):
            raise NotYet(
                f"a peer sent {n} bytes within about 0.3 s and your function raised "
                "TimeoutError with timeout=3",
                "check the deadline arithmetic: settimeout() takes seconds, and the "
                "time left is deadline - time.monotonic().",
            )
        raise NotYet(
            f"with a slow sender, your function raised {describe_exception(out.error)}",
            "read the error message, fix the function, run its cell again.",
        )
    if not isinstance(out.value, (bytes, bytearray, memoryview)):
        raise NotYet(
            f"it returned {type(out.value).__name__} {_show(out.value)}, not bytes",
            "collect what recv() returns and return it joined: b''.join(chunks).",
        )
    got = bytes(out.value)
    if len(got) < n:
        raise NotYet(
            f"a peer sent {n} bytes, 4 at a time, and your function returned only "
            f"{len(got)}: {_show(got)}",
            "recv(n) returns what has arrived so far, at most n bytes and often "
            "fewer: call it in a loop until you have all n.",
        )
    if len(got) > n:
        raise NotYet(
            f"asked for {n} bytes, your function returned {len(got)}: it also read "
            f"the start of the next message ({_show(got[n:])})",
            READ_AHEAD_HINT,
        )
    if read > n:
        raise NotYet(
            f"it returned the right {n} bytes, but read {read} from the socket: the "
            f"{read - n} after them were the start of the next message, and they are "
            "lost",
            READ_AHEAD_HINT,
        )
    if got != MESSAGE:
        raise NotYet(
            f"it returned {n} bytes, but not the ones sent: {_show(got)}",
            "append each chunk at the end, in the order recv() returned them.",
        )
    if not isinstance(out.value, bytes):
        raise NotYet(
            f"it returned the right bytes, but as a {type(out.value).__name__}, not bytes",
            "return bytes: b''.join(chunks), or bytes(buffer).",
        )
    if out.elapsed > 1.5:
        raise NotYet(
            f"the {n} bytes were all there after about 0.3 s, and your function "
            f"returned only after {out.elapsed:.1f} s (timeout=3)",
            "stop as soon as you have n bytes: loop while received < n, not until the deadline.",
        )
    _check_restored(run, GIVEN_TIMEOUT, "after returning the message")


def _early_close(fn) -> None:
    n = len(MESSAGE)
    run = _run(
        fn,
        [b"cut", HANG_UP],
        n,
        2.0,
        limit=4.0,
        hang_hint="once the peer has closed, recv() returns b'' at once, every time: "
        "stop at the first b'' and raise ConnectionError.",
    )
    out = run.out
    situation = "a peer sent 3 bytes and closed the connection"
    if out.error is None:
        raise NotYet(
            f"{situation}; your function returned {_show(out.value)} instead of "
            "raising ConnectionError",
            CLOSED_HINT,
        )
    if isinstance(out.error, TimeoutError) and out.elapsed < 1.0:
        raise NotYet(
            f"{situation}; your function raised {describe_exception(out.error)} at "
            "once: a closed connection is not a timeout",
            "when recv() returns b'', raise ConnectionError, and do not turn other "
            "errors into TimeoutError.",
        )
    if isinstance(out.error, TimeoutError):
        raise NotYet(
            f"{situation}; your function kept trying until its timeout",
            "after the peer closes, recv() returns b'' at once, every time: treat "
            "b'' as the end and raise ConnectionError.",
        )
    if not isinstance(out.error, ConnectionError):
        raise NotYet(
            f"{situation}; your function raised {describe_exception(out.error)} "
            "instead of ConnectionError",
            "when recv() returns b'', raise ConnectionError('peer closed').",
        )
    _check_restored(run, None, "after the peer closed")


def _reset_peer(fn) -> None:
    n = len(MESSAGE)
    run = _run(fn, [b"cut", 0.1, RESET], n, 2.0, limit=4.0, hang_hint=RESET_HINT)
    out = run.out
    situation = "a peer sent 3 bytes, then reset the connection"
    if out.error is None:
        raise NotYet(
            f"{situation}; your function returned {_show(out.value)}, as if nothing had happened",
            RESET_HINT,
        )
    if not isinstance(out.error, ConnectionError):
        raise NotYet(
            f"{situation}; your function raised {describe_exception(out.error)} "
            "instead of letting ConnectionResetError through",
            RESET_HINT,
        )
    _check_restored(run, None, "after the reset")


def _stalled_peer(fn) -> None:
    first = b"only part"
    n = len(MESSAGE)
    run = _run(fn, [first], n, SHORT_TIMEOUT, limit=SHORT_TIMEOUT + 2.0, hang_hint=HANG_HINT)
    situation = f"a peer sent {len(first)} of {n} bytes, then nothing"
    _expect_timeout(
        run,
        situation,
        after=SHORT_TIMEOUT,
        wrong_hint="let the TimeoutError of recv() through, or raise TimeoutError yourself.",
        before_timing=_not_spinning,
    )
    _check_restored(run, None, "after the TimeoutError")


def _late_wakeup(fn) -> None:
    """The first bytes reach the function only after its deadline (as if the thread had not
    been scheduled in time): it must raise TimeoutError without another recv() wait."""
    timeout = 0.3
    late = timeout + 0.1
    n = len(MESSAGE)
    run = _run(
        fn, [b"only part"], n, timeout, limit=late + 2.0, hang_hint=TIME_UP_HINT, late_return=late
    )
    situation = (
        f"with timeout={timeout}, the first recv() returned 9 of {n} bytes only "
        f"after {late:.1f} s (the time was up)"
    )
    _expect_timeout(run, situation, after=late, wrong_hint=TIME_UP_HINT, late_hint=DEADLINE_HINT)
    _check_restored(run, None, "after the TimeoutError")


def _trickling_peer(fn) -> None:
    n = 200
    script = []
    for _ in range(80):  # one byte every 50 ms for 4 s (ended early at exit)
        script += [b".", 0.05]
    run = _run(fn, script, n, SHORT_TIMEOUT, limit=SHORT_TIMEOUT + 2.5, hang_hint=DEADLINE_HINT)
    _expect_timeout(
        run,
        f"a peer trickled one byte every 50 ms; asked for {n} bytes within {SHORT_TIMEOUT} s",
        after=SHORT_TIMEOUT,
        wrong_hint=DEADLINE_HINT,
    )
    _check_restored(run, None, "after the TimeoutError")


def _trickle_then_stall(fn) -> None:
    timeout = 0.6
    n = 200
    script = []
    for _ in range(10):  # one byte every 50 ms for 0.5 s, then nothing
        script += [b".", 0.05]
    run = _run(fn, script, n, timeout, limit=timeout + 2.5, hang_hint=DEADLINE_HINT)
    _expect_timeout(
        run,
        f"a peer trickled one byte every 50 ms for 0.5 s, then stalled; "
        f"asked for {n} bytes within {timeout} s",
        after=timeout,
        wrong_hint=DEADLINE_HINT,
    )
    _check_restored(run, None, "after the TimeoutError")


# ------------------------------------------------------------- why the second client waited
CHOICES = {
    "A": (
        "The server's CPU was busy computing the first client's replies.",
        "No: upper-casing a few bytes takes microseconds, and the server's thread spent the "
        "whole time blocked in recv(), using no CPU at all.",
    ),
    "B": (
        "The server's only thread was blocked in recv() on the first client's connection, "
        "so it did not call accept() for the second client until the first one closed.",
        "Yes: a blocking server does one thing at a time. While its only thread waits inside "
        "recv() for client A, nothing calls accept(): client B sits in the listen backlog "
        "until A closes, and only then is it accepted and answered.",
    ),
    "C": (
        "The kernel refuses a second TCP connection to a port until the first one is closed.",
        "No: client B's connect() succeeded at once (the kernel completes the handshake and "
        "queues the connection in the listen backlog). It is the server program that had not "
        "accepted it yet.",
    ),
    "D": (
        "The second client's recv() was given a lower priority by the operating system.",
        "No: there is no such priority. Client B's recv() waited because no reply had been "
        "sent: the server had not even accepted B's connection.",
    ),
}
"""Letter -> (choice as shown in notebook 01, explanation)."""

RIGHT_CHOICE = "B"

_ONE_LETTER = re.compile(r"\(?\s*([A-Za-z])\s*[.)]?")


@checker
def check_why_second_client_waited(answer):
    """Check the multiple-choice answer of exercise 2: ``answer()`` returns a letter.

    Accepted: one letter of :data:`CHOICES` as a ``str``, in either case, with spaces
    around it, in parentheses or followed by ``)`` or ``.`` (``"B"``, ``"b"``, ``"(B)"``,
    ``"b)"``, ``" B. "``). A plain value (``answer = "B"``) is accepted too. Rejected, each
    with a hint that names it:

    * the stub (``NotImplementedError``), a function that raises or runs away (the harness);
    * ``None`` (a function that prints the letter instead of returning it);
    * a value that is not a ``str`` (``2``, ``b"B"``, ``["B"]``, ``True``...);
    * an empty string; a letter that is not a choice (``"E"``); several choices
      (``"B or C"``, ``"BC"``); the text of a choice instead of its letter; any other text
      (``"Answer: B"``);
    * a function that does not return the same answer twice (``random.choice("ABCD")``);
    * a wrong letter: the explanation of why that choice is wrong.
    """
    first = answer_of(answer)
    if callable(answer):
        again = answer_of(answer)
        if again != first:
            raise NotYet(
                f"answer() returned {first!r}, then {again!r}: not the same answer twice",
                'make it return one fixed letter, e.g. return "A".',
            )
    letter = _letter_of(first)
    _, why = CHOICES[letter]
    if letter != RIGHT_CHOICE:
        raise NotYet(
            f"({letter}) is not what happened.",
            why + " Look at when the server accepted client B (the dashed line).",
        )
    return f"({letter}) — {why}"


def _letter_of(value) -> str:
    """The choice ``value`` names (upper case), or :class:`NotYet` saying what is wrong."""
    letters = ", ".join(CHOICES)
    example = 'end the function with return and the letter in quotes, e.g. return "A".'
    if value is None:
        raise NotYet(
            "your answer is None: answer() returned nothing",
            "print() only shows a value; " + example,
        )
    if isinstance(value, (bytes, bytearray)):
        raise NotYet(
            f"your answer is bytes, {value!r}, not a str",
            'drop the b in front of the quotes: return "A", not return b"A".',
        )
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        raise NotYet(
            f"your answer is {_a(type(value).__name__)}, {value!r}, not one letter",
            "choose one sentence and return its letter alone: " + example,
        )
    if not isinstance(value, str):
        raise NotYet(
            f"your answer is {_a(type(value).__name__)}, {_short(value)}: the "
            f"choices are "
            f"the letters {letters}",
            example,
        )
    text = value.strip()
    if not text:
        raise NotYet("your answer is an empty string", example)
    match = _ONE_LETTER.fullmatch(text)
    if match:
        letter = match.group(1).upper()
        if letter not in CHOICES:
            raise NotYet(f"{letter} is not one of the choices: they are {letters}", example)
        return letter
    named = sorted({c.upper() for c in re.findall(r"\b[A-Da-d]\b", text)})
    if re.fullmatch(r"[A-Da-d\s,;/&+]+", text) or (len(named) > 1 and len(text) < 20):
        several = sorted({c.upper() for c in text if c.upper() in CHOICES})
        raise NotYet(
            f"your answer, {value!r}, names several choices ({', '.join(several)})",
            "only one sentence explains the timeline: return its letter alone.",
        )
    flat = " ".join(text.lower().split())
    if (
        any(
            flat.strip(".") in sentence.lower() or sentence.lower().startswith(flat[:30])
            for sentence, _ in CHOICES.values()
        )
        and len(flat) >= 15
    ):
        raise NotYet(
            "your answer is the text of a choice, not its letter",
            'return the letter in front of the sentence you chose, e.g. return "A".',
        )
    raise NotYet(
        f"your answer, {_short(value)}, is not a letter",
        f"return the letter alone, with nothing around it ({letters}): " + example,
    )


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def _short(value, limit: int = 40) -> str:
    """``repr(value)``, cut to about ``limit`` characters."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit] + "..."


__all__ = [
    "CHOICES",
    "HANG_UP",
    "RESET",
    "RIGHT_CHOICE",
    "Outcome",
    "ScriptedPeer",
    "WatchedSocket",
    "check_recv_exactly_timeout",
    "check_why_second_client_waited",
    "requires_exercise",
    "run_learner",
]
