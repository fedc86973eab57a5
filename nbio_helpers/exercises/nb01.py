"""Checkers for notebook 01 (blocking recv).

* :func:`check_recv_exactly_timeout` — the learner writes
  ``recv_exactly_timeout(sock, n, timeout)``; the checker runs it on real TCP connections
  whose far end sends slowly, stalls, trickles one byte at a time, or closes early.
* :func:`check_why_second_client_waited` — a multiple-choice question about the timeline of
  the one-client-at-a-time server, checked with an explanation for every choice.

Usage in the notebook::

    from nbio_helpers.exercises.nb01 import check_recv_exactly_timeout
    check_recv_exactly_timeout(recv_exactly_timeout)

:class:`ScriptedPeer` (a connection whose far end follows a script) is reused by the checkers
of notebook 02.
"""
from __future__ import annotations

import itertools
import socket
import struct
import sys
import threading
import time

from . import NotYet, Outcome, answer_of, checker, describe_exception, try_learner

CLOSE = "close"
"""In a :class:`ScriptedPeer` script: close the far end (the learner then reads ``b''``)."""

RESET = "reset"
"""In a :class:`ScriptedPeer` script: abort the connection from the far end (see
:meth:`ScriptedPeer.reset`; the learner's next ``recv()`` raises ``ConnectionResetError``)."""

_peers = itertools.count(1)


class ScriptedPeer:
    """A real TCP connection on 127.0.0.1 whose far end follows a script, in a thread.

    Script items: ``bytes`` are sent, a number is a pause in seconds, :data:`CLOSE` closes
    the far end, :data:`RESET` aborts the connection from it (:meth:`reset`). After the
    script the far end stays open and silent (a stalled peer) until the ``with`` block ends.
    Leaving the block ends the script at once, shuts down and closes both ends (which also
    frees a learner's call still blocked on :attr:`sock`)::

        with ScriptedPeer([b"ab", 0.05, b"cd", CLOSE]) as peer:
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
    """

    def __init__(self, script=(), *, sndbuf: int | None = None, rcvbuf: int | None = None):
        self.script = list(script)
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        listener = socket.create_server(("127.0.0.1", 0))
        try:
            if rcvbuf is not None:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock = socket.socket()
            if sndbuf is not None:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            self.sock.settimeout(5.0)
            self.sock.connect(listener.getsockname())
            self.sock.settimeout(None)          # the learner decides about timeouts
            listener.settimeout(5.0)
            self.far, _ = listener.accept()
        finally:
            listener.close()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"check-peer-{next(_peers)}")

    def __enter__(self) -> "ScriptedPeer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _run(self) -> None:
        try:
            for step in self.script:
                if self.stopping.is_set():
                    return
                if step == CLOSE:
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
        if self._thread.ident is not None:     # started: let the script end first
            self._thread.join(2.0)
        _close_with_reset(self.far)

    def close(self) -> None:
        """End the script, then shut down and close both ends."""
        self.stopping.set()
        for sock in (self.sock, self.far):
            try:
                sock.shutdown(socket.SHUT_RDWR)   # frees a recv()/send() blocked on it
            except OSError:
                pass
        if self._thread.ident is not None:     # started (not a peer used without `with`)
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
    except OSError:     # already closed (or shut down by close()): nothing left to abort
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

HANG_HINT = ("a recv() without a timeout waits forever for a peer that stalls: call "
             "sock.settimeout(...) before recv(), so that it raises TimeoutError instead.")

DEADLINE_HINT = ("the timeout is for the whole call, not for each recv(): a peer sending one "
                 "byte every 50 ms never lets a per-recv() timeout expire. Compute "
                 "deadline = time.monotonic() + timeout once, and before each recv() call "
                 "sock.settimeout(deadline - time.monotonic()) (raise TimeoutError yourself "
                 "if that is <= 0).")


@checker
def check_recv_exactly_timeout(recv_exactly_timeout):
    """Check ``recv_exactly_timeout(sock, n, timeout)`` against four real peers.

    1. a slow sender (4 bytes every 30 ms, then the start of the next message): it must
       return exactly the ``n`` bytes, not fewer, not more;
    2. a peer that sends a few bytes then stalls: ``TimeoutError`` after about ``timeout``;
    3. a peer that trickles one byte every 50 ms: ``TimeoutError`` after about ``timeout``
       (the timeout is a deadline for the whole call);
    4. a peer that closes early: ``ConnectionError``.
    """
    if not callable(recv_exactly_timeout):
        raise NotYet(f"expected a function, got {type(recv_exactly_timeout).__name__}",
                     "pass the function itself: check_recv_exactly_timeout(recv_exactly_timeout).")
    _slow_sender(recv_exactly_timeout)
    _stalled_peer(recv_exactly_timeout)
    _trickling_peer(recv_exactly_timeout)
    _early_close(recv_exactly_timeout)
    return ("all 29 bytes from a slow sender (and not one byte more), TimeoutError from a "
            "peer that stalled and from one that trickled, ConnectionError from one that "
            "closed early")


def _slow_sender(fn) -> None:
    chunks = [MESSAGE[start:start + 4] for start in range(0, len(MESSAGE), 4)]
    chunks[-1] += EXTRA     # in the same segment: a recv() too big would take some of it
    script = []
    for chunk in chunks:
        script += [chunk, 0.03]
    n = len(MESSAGE)
    with ScriptedPeer(script) as peer:
        out = run_learner(fn, peer.sock, n, 3.0, limit=5.0, hang_hint=HANG_HINT)
    if out.error is not None:
        if isinstance(out.error, TimeoutError):
            raise NotYet(f"a peer sent {n} bytes within about 0.3 s and your function raised "
                         "TimeoutError with timeout=3",
                         "check the deadline arithmetic: settimeout() takes seconds, and the "
                         "time left is deadline - time.monotonic().")
        raise NotYet(f"with a slow sender, your function raised {describe_exception(out.error)}",
                     "read the error message, fix the function, run its cell again.")
    if not isinstance(out.value, (bytes, bytearray)):
        raise NotYet(f"it returned {type(out.value).__name__}, not bytes",
                     "collect what recv() returns and return it joined: b''.join(chunks).")
    got = bytes(out.value)
    if len(got) < n:
        raise NotYet(f"a peer sent {n} bytes, 4 at a time, and your function returned only "
                     f"{len(got)}: {_show(got)}",
                     "recv(n) returns what has arrived so far, at most n bytes and often "
                     "fewer: call it in a loop until you have all n.")
    if len(got) > n:
        raise NotYet(f"asked for {n} bytes, your function returned {len(got)}: it also read "
                     f"the start of the next message ({_show(got[n:])})",
                     "ask recv() for the bytes still missing only: recv(n - received).")
    if got != MESSAGE:
        raise NotYet(f"it returned {n} bytes, but not the ones sent: {_show(got)}",
                     "append each chunk at the end, in the order recv() returned them.")


def _stalled_peer(fn) -> None:
    first = b"only part"
    n = len(MESSAGE)
    with ScriptedPeer([first]) as peer:
        out = run_learner(fn, peer.sock, n, SHORT_TIMEOUT, limit=SHORT_TIMEOUT + 2.0,
                          hang_hint=HANG_HINT)
    if out.error is None:
        raise NotYet(f"a peer sent {len(first)} of {n} bytes, then nothing; your function "
                     f"returned {_show(out.value)} instead of raising TimeoutError",
                     "when the time is up, raise TimeoutError: returning part of a message "
                     "would let the caller believe it has a whole one.")
    if not isinstance(out.error, TimeoutError):
        raise NotYet(f"a peer that stalls should give TimeoutError; your function raised "
                     f"{describe_exception(out.error)}",
                     "let socket.timeout (which is TimeoutError) propagate, or raise "
                     "TimeoutError yourself.")
    if out.elapsed < 0.8 * SHORT_TIMEOUT:
        raise NotYet(f"with timeout={SHORT_TIMEOUT}, your function gave up after only "
                     f"{out.elapsed:.2f} s",
                     "wait for the whole timeout before raising TimeoutError.")


def _trickling_peer(fn) -> None:
    n = 200
    script = []
    for _ in range(80):                 # one byte every 50 ms for 4 s (ended early at exit)
        script += [b".", 0.05]
    with ScriptedPeer(script) as peer:
        out = run_learner(fn, peer.sock, n, SHORT_TIMEOUT, limit=SHORT_TIMEOUT + 2.5,
                          hang_hint=DEADLINE_HINT)
    if out.error is None:
        raise NotYet(f"a peer trickled one byte every 50 ms; asked for {n} bytes within "
                     f"{SHORT_TIMEOUT} s, your function returned instead of raising TimeoutError",
                     "when the time is up, raise TimeoutError.")
    if not isinstance(out.error, TimeoutError):
        raise NotYet(f"with a peer that trickles, your function raised "
                     f"{describe_exception(out.error)} instead of TimeoutError",
                     DEADLINE_HINT)
    if out.elapsed > SHORT_TIMEOUT + 1.0:
        raise NotYet(f"with timeout={SHORT_TIMEOUT}, TimeoutError came only after "
                     f"{out.elapsed:.1f} s", DEADLINE_HINT)


def _early_close(fn) -> None:
    n = len(MESSAGE)
    with ScriptedPeer([b"cut", CLOSE]) as peer:
        out = run_learner(fn, peer.sock, n, 2.0, limit=4.0,
                          hang_hint="once the peer has closed, recv() returns b'' at once, "
                                    "every time: stop at the first b'' and raise "
                                    "ConnectionError.")
    if out.error is None:
        raise NotYet(f"a peer sent 3 bytes and closed the connection; your function returned "
                     f"{out.value!r} instead of raising ConnectionError",
                     "recv() returning b'' means the peer closed: the missing bytes will "
                     "never come, so raise ConnectionError.")
    if isinstance(out.error, TimeoutError):
        raise NotYet("a peer sent 3 bytes and closed the connection; your function kept "
                     "trying until its timeout",
                     "after the peer closes, recv() returns b'' at once, every time: treat "
                     "b'' as the end and raise ConnectionError.")
    if not isinstance(out.error, ConnectionError):
        raise NotYet(f"a peer that closes early should give ConnectionError; your function "
                     f"raised {describe_exception(out.error)}",
                     "when recv() returns b'', raise ConnectionError('peer closed').")


# ------------------------------------------------------------- why the second client waited
CHOICES = {
    "A": ("The server's CPU was busy computing the first client's replies.",
          "No: upper-casing a few bytes takes microseconds, and the server's thread spent the "
          "whole time blocked in recv(), using no CPU at all."),
    "B": ("The server's only thread was blocked in recv() on the first client's connection, "
          "so it did not call accept() for the second client until the first one closed.",
          "Yes: a blocking server does one thing at a time. While its only thread waits inside "
          "recv() for client A, nothing calls accept(): client B sits in the listen backlog "
          "until A closes, and only then is it accepted and answered."),
    "C": ("The kernel refuses a second TCP connection to a port until the first one is "
          "closed.",
          "No: client B's connect() succeeded at once (the kernel completes the handshake and "
          "queues the connection in the listen backlog). It is the server program that had not "
          "accepted it yet."),
    "D": ("The second client's recv() was given a lower priority by the operating system.",
          "No: there is no such priority. Client B's recv() waited because no reply had been "
          "sent: the server had not even accepted B's connection."),
}
"""Letter -> (choice as shown in notebook 01, explanation)."""

RIGHT_CHOICE = "B"


@checker
def check_why_second_client_waited(answer):
    """Check the multiple-choice answer, a letter "A" to "D" (or a function returning it),
    with an explanation."""
    letters = ", ".join(CHOICES)
    answer = answer_of(answer)
    if answer is None:
        raise NotYet("no answer yet (answer is None)",
                     'return the letter of your choice, e.g. return "A", run that cell, '
                     "then this one.")
    if not isinstance(answer, str) or answer.strip().strip("()").upper() not in CHOICES:
        raise NotYet(f"the answer should be one of the letters {letters}, not {answer!r}",
                     'give a single letter in quotes, e.g. return "A".')
    letter = answer.strip().strip("()").upper()
    _, why = CHOICES[letter]
    if letter != RIGHT_CHOICE:
        raise NotYet(f"({letter}) is not what happened.",
                     why + " Look at when the server accepted client B (the dashed line).")
    return f"({letter}) — {why}"


__all__ = ["CHOICES", "CLOSE", "Outcome", "RESET", "ScriptedPeer",
           "check_recv_exactly_timeout", "check_why_second_client_waited", "run_learner"]
