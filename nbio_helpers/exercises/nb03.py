"""Checkers for notebook 03 (the polling loop): write two steps of the classic loop.

The learner writes one step of :class:`~nbio_helpers.lessons.nb03.ClassicLoop`. Each checker first
calls the learner's function directly, on sockets whose behaviour it controls (probes), which
names a mistake precisely; then it runs the classic loop with the learner's step in place of
its own, as a real server in a background thread, and proves the step with real clients.

Usage in the notebook::

    from nbio_helpers.exercises.nb03 import check_send_pending, check_accept_new
    check_send_pending(send_pending)

Exercise 1, ``send_pending(wlist)`` (:func:`check_send_pending`)
-----------------------------------------------------------------

The rules the exercise states, and how they are checked:

1. one ``send()`` per pending ``[sock, data]`` pair per call (probe: send counts);
2. ``BlockingIOError``: the pair stays, unchanged (probe);
3. another ``OSError`` (``ConnectionResetError``, ``BrokenPipeError``, ``TimeoutError``...):
   the pair is removed, nothing escapes (probe: a reset and a timed-out connection);
4. all sent: the pair is removed (probe; and a half-closing client sees EOF);
5. part sent: the pair keeps the rest, ``item[1] = data[sent:]`` (probe; a 1 MiB echo
   through 4 KiB buffers comes back intact);
6. ``wlist`` itself is changed (probe: the caller's list);
7. no pair is skipped (probe: every pair's ``send()`` called; 8 replies pending at once go
   out in one round of the loop);
8. never wait: no ``sendall()``, the sockets stay non-blocking (no ``setblocking(True)``, no
   ``settimeout()``), no sleep (probe: calls and modes; live: a client that went quiet after
   its reply and one that never reads delay nobody, replies are prompt, a call of the step
   takes no time);
9. no catch-all: an error that is not an ``OSError`` gets through (probe: ``send()`` of a
   ``str`` raises TypeError);
10. the sockets are the loop's: closing one that still talks is wrong (probe).

Typical wrong answers, each rejected with a hint that names it (tests/test_exercises_nb03.py):
the article's dropped rest of a partial send; the whole data sent again after a partial
send; pairs removed while a ``for`` loop runs over ``wlist`` (a pair skipped); BlockingIOError
not caught; BlockingIOError taken for a gone client (pair dropped); only ``ConnectionError``
caught (a ``TimeoutError`` escapes); ``except Exception`` or a bare ``except``; ``sendall()``
on the non-blocking socket; the socket made blocking (then ``sendall()``: it passes an echo
test, then freezes the loop on the first client that goes quiet); ``settimeout()``; a loop of
``send()`` calls until the data is gone; finished pairs never removed (or left with ``b''``);
gone clients' pairs never removed; ``wlist`` rebound instead of changed; a new tuple put in
place of the pair; the socket closed after its reply; a ``time.sleep()`` in the step.

Exercise 2, ``accept_new(listener)`` (:func:`check_accept_new`)
----------------------------------------------------------------

Rules: accept every client waiting, in one call (probe: 3 waiting, 3 returned); return a list
of the sockets only (not ``(sock, address)`` pairs); ``[]`` when nobody waits (the
``BlockingIOError`` caught); every socket non-blocking, ready to be polled: not left as
``accept()`` gave it, not ``setblocking(True)``, not ``settimeout(t)`` (probe: modes, also where
the OS made the descriptor non-blocking but Python says blocking, as on macOS; live: a quiet
client freezes nobody); the listener left as it is (non-blocking, open); never wait (no sleep,
no ``select()`` with a timeout: a call takes no time); no catch-all (probe: an error that is
not an ``OSError`` from ``accept()`` gets through); open sockets returned; 20 clients at once
all served.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import itertools
import select
import socket
import statistics
import time

from nbio_helpers.clients import connect, recv_exactly, run_load
from nbio_helpers.events import ACCEPT, ACCEPT_WOULD_BLOCK, SEND
from nbio_helpers.exercises import (
    LearnerStopped,
    NotYet,
    checker,
    describe_exception,
    guarded,
    judge_error,
    running_for,
    stop_learner_code,
    try_learner,
    where,
)
from nbio_helpers.lessons.nb03 import (
    ClassicServer,
    burst,
    echo_payload,
    half_close_sees_eof,
    is_starved,
    send_rounds,
)

PAYLOAD = 1 << 20
"""Bytes echoed through small buffers by :func:`check_send_pending`."""

SNDBUF = 4096
"""SO_SNDBUF of the accepted sockets in the checks: small, so sends come out partial."""

STUCK_AFTER = 1.0
"""A learner's step still running after this many seconds is stuck: one round of the loop
takes microseconds."""

SLOW_CALL = 0.005
"""A step whose calls take longer than this (median) waits in the loop: a correct one takes
microseconds (GIL hand-overs with the checker's clients cost well under a millisecond)."""

SLOW_REPLY = 0.02
"""A median reply time above this (one request at a time, a few bytes) means the loop waits
somewhere: a correct busy loop answers in well under a millisecond."""

REPLY_WAIT = 1.0
"""Seconds a client waits for a reply before the checker says the loop is frozen."""

BURST_CLIENTS = 8
BURST_INTERVAL = 0.02
WAITING = 3
"""Clients waiting to be accepted in the accept_new probe."""

# ------------------------------------------------------------------------------ hints
ACCEPT_HINT = (
    "accept() raises BlockingIOError when nobody is waiting: catch it and return "
    "the sockets accepted so far."
)
PAIR_HINT = (
    "accept() returns a pair (socket, address): keep the socket only, "
    "sock, _ = listener.accept(), and return a list of those."
)
ONE_SEND_HINT = (
    "call send() once per pair: what it does not take is sent in the next "
    "round; keep the rest with item[1] = data[sent:]."
)
SENDALL_HINT = (
    "sendall() is for blocking sockets: on a non-blocking one it raises "
    "BlockingIOError after sending an unknown part. Call send() once, keep the "
    "rest, item[1] = data[sent:]."
)
SEND_MODE_HINT = (
    "never change a socket's mode in send_pending(): no setblocking(True), no "
    "settimeout(). The loop polls every socket with recv(), so a blocking socket "
    "freezes the whole loop as soon as its client goes quiet; call send() once "
    "and keep the rest for the next round."
)
SKIP_HINT = (
    "removing items from a list while a for loop runs over it skips the item after "
    "each one removed: collect the pairs to remove and remove them after the loop, "
    "as the article does, or loop over a copy, for item in wlist[:]."
)
CATCH_ALL_HINT = (
    "catch BlockingIOError and OSError only: a catch-all (except Exception, or a "
    "bare except) hides bugs, as the article's did."
)
WAIT_HINT = (
    "one round of the loop must not wait: never call a blocking method (sendall(), a "
    "blocking recv()/accept(), time.sleep, select() with a timeout) and never loop "
    "until something happens; do what can be done now and return."
)
ACCEPT_MODE_HINT = (
    "accept() returns a socket in blocking mode (on Linux truly so; on macOS "
    "the descriptor inherits non-blocking, yet Python says blocking): call "
    "sock.setblocking(False) on each one before it is polled (settimeout(0) "
    "does the same; any other timeout makes recv() wait)."
)
ACCEPT_HANG_HINT = (
    "accept_new() must return at once: leave the listener non-blocking (never "
    "setblocking(True) or settimeout() on it) and stop at the first "
    "BlockingIOError."
)


class WrongReturn(TypeError):
    """The learner's step returned something the loop cannot use; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


def _mode(sock: socket.socket) -> str:
    """``""`` for a non-blocking socket, else what it is (for a verdict)."""
    timeout = sock.gettimeout()
    if timeout == 0.0:
        return ""
    return "blocking mode" if timeout is None else f"timeout mode ({timeout:g} s)"


def _harm(mode: str) -> str:
    """What a client socket in ``mode`` does to the loop (for a verdict)."""
    if mode.startswith("timeout"):
        wait = mode[mode.index("(") + 1 : mode.index(" s)")]
        return f"each quiet client would hold up the whole loop for {wait} s, every round"
    return "on Linux one quiet client would freeze the whole loop"


_servers = itertools.count(1)


class LearnerClassicServer(ClassicServer):
    """The classic server (its loop correct), except that the learner's step replaces ours.

    Watches what the learner's step does: a ``SEND`` is logged for each pair it removed or
    shortened, the sockets it leaves (or returns) in a mode other than non-blocking are
    counted, and the duration of each call is kept. Its thread is named ``learner-…``: if the
    learner's code hangs, it is not mistaken for a server of the package by ``finish()``.
    """

    model = "classic-learner"

    def __init__(self, *, send_pending=None, accept_new=None, **kwargs):
        kwargs.setdefault("name", f"check-classic-{next(_servers)}")
        super().__init__(**kwargs)
        # Guarded: the harness can time them, say where they hang, and stop them; a
        # KeyboardInterrupt or SystemExit they raise kills the loop like any error.
        self.learner_send_pending = send_pending and guarded(send_pending, name="send_pending")
        self.learner_accept_new = accept_new and guarded(accept_new, name="accept_new")
        self.modes: list[str] = []  # what the step left a client's socket in
        self.listener_mode = ""  # what the step left the listener in
        # Seconds per call of the step (send_pending: only calls with work to do).
        self.durations: collections.deque[float] = collections.deque(maxlen=10_000)

    def start(self) -> LearnerClassicServer:
        super().start()
        assert self._thread is not None  # started
        self._thread.name = f"learner-{self.name}"
        return self

    def call_time(self, window: float = 0.1) -> float:
        """Median seconds per call of the learner's step over the next ``window`` seconds,
        while the caller only sleeps (so no client thread of the checker holds the GIL)."""
        self.durations.clear()
        time.sleep(window)
        calls = list(self.durations)
        return statistics.median(calls) if calls else 0.0

    def send_pending(self, wlist: list) -> None:
        if self.learner_send_pending is None:
            return super().send_pending(wlist)
        before = [(item, item[0], len(item[1])) for item in wlist]
        start = time.perf_counter()
        try:
            self.learner_send_pending(wlist)
        finally:
            if before:
                self.durations.append(time.perf_counter() - start)
            self._note_modes(sock for _, sock, _ in before)
        # Log a SEND for each pair it removed or shortened, whatever it called (sendall() is
        # not traced); send_rounds() counts rounds, so a send also traced counts once.
        still = {
            id(item): len(item[1]) for item in wlist if isinstance(item, list) and len(item) == 2
        }
        for item, sock, size in before:
            left = still.get(id(item), 0)
            if left < size:
                self.events.record(SEND, getattr(sock, "cid", None), size - left)

    def _note_modes(self, socks) -> None:
        for sock in socks:
            with contextlib.suppress(OSError):
                if sock.fileno() != -1 and _mode(sock):
                    self.modes.append(_mode(sock))

    def accept_new(self) -> list:
        if self.learner_accept_new is None:
            return super().accept_new()
        start = time.perf_counter()
        try:
            new = self.learner_accept_new(self.listener)
        finally:
            self.durations.append(time.perf_counter() - start)
            with contextlib.suppress(OSError):
                if self.listener is not None and not self.listener_mode:
                    self.listener_mode = _mode(self.listener)
        problem = _not_a_list_of_sockets(new)
        if problem:
            _close_found(new)  # the loop dies next: leave no socket open
            raise WrongReturn(*problem)
        self.events.record(ACCEPT_WOULD_BLOCK)  # one per round, as the classic loop does
        # Python's own mode: on macOS and Windows the descriptor may be non-blocking anyway
        # (inherited from the listener), so a freeze alone would miss the mistake there.
        self._note_modes(new)
        for sock in new:
            if self.sndbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
            self.track(sock)
        return new


def _close_found(value, depth: int = 0) -> None:
    """Close every socket in what the learner returned (a socket, or lists/tuples of them)."""
    if isinstance(value, socket.socket):
        value.close()
    elif isinstance(value, (list, tuple)) and depth < 3:
        for item in value:
            _close_found(item, depth + 1)


@contextlib.contextmanager
def _learner_server(step: str, **options):
    """Run the classic loop with the learner's step; on exit, stop it quietly (and the
    learner's step with it, if it is stuck)."""
    server = LearnerClassicServer(**options).start()
    try:
        yield server
    finally:
        # Its error is reported by _raise_loop_error; a stuck step is stopped by the harness.
        thread = server.thread
        with contextlib.suppress(Exception, LearnerStopped):
            server.stop(timeout=STUCK_AFTER)
        if server.running and thread is not None:
            stop_learner_code([thread.ident])


def _raise_if_stuck(server, step: str) -> None:
    """Fail if the learner's step has been running for more than :data:`STUCK_AFTER` s."""
    if running_for(server.thread) > STUCK_AFTER:
        place = where(server.thread)
        raise NotYet(
            f"{step}() did not return within {STUCK_AFTER:g} s"
            + (f": it was still running {place}" if place else ""),
            WAIT_HINT,
        )


def _raise_loop_error(server, step: str, ignore=()) -> None:
    """If the learner's step killed the loop (or hangs, or changed a socket's mode), fail
    with what it did (unless the error is one of ``ignore``)."""
    _raise_if_stuck(server, step)
    if server.modes:
        what = "left a client's socket" if step == "send_pending" else "returned a socket"
        raise NotYet(
            f"{step}() {what} in {server.modes[0]}: {_harm(server.modes[0])}",
            SEND_MODE_HINT if step == "send_pending" else ACCEPT_MODE_HINT,
        )
    if server.listener_mode:
        raise NotYet(
            f"accept_new() left the listening socket in {server.listener_mode}", ACCEPT_HANG_HINT
        )
    error = server.error
    if error is None or isinstance(error, (ignore, LearnerStopped)):
        return
    judge_error(error, f"{step}()", prefix="the server loop died: ")
    if isinstance(error, WrongReturn):
        raise NotYet(str(error), error.hint)
    if isinstance(error, BlockingIOError):
        hint = (
            "BlockingIOError means 'not now': catch it and leave that item for the next round."
            if step == "send_pending"
            else ACCEPT_HINT
        )
    elif "'tuple' object" in str(error) and step == "accept_new":
        hint = PAIR_HINT
    else:
        hint = "read the error, fix the function, run its cell again."
    raise NotYet(f"the server loop died: {step}() raised {describe_exception(error)}", hint)


def _raise_if_slow(server, step: str) -> None:
    """Fail if the learner's step takes long per call (it waits: replies come late)."""
    median = server.call_time()
    if median > SLOW_CALL:
        raise NotYet(
            f"{step}() took {median * 1e3:.0f} ms per call (median): it waits, and "
            "every client waits with it",
            WAIT_HINT,
        )


# ------------------------------------------------------------------------- probes
class _ProbeSocket(socket.socket):
    """One end of a socketpair whose ``send()`` does what the probe says, and which notes
    what is done to it. ``script``: ``"all"`` (takes everything), ``n`` (takes ``n`` bytes),
    ``"real"`` (the real ``send()``), or a function returning the exception to raise."""

    def __init__(self, sock: socket.socket, script, label: str):
        super().__init__(sock.family, sock.type, sock.proto, fileno=sock.detach())
        super().setblocking(False)
        self.script = script
        self.label = label
        self.calls: collections.Counter[str] = collections.Counter()
        self.mode_calls: list[str] = []

    def __repr__(self) -> str:
        return f"<socket {self.label}>"

    def _take(self, data) -> int:
        if callable(self.script):  # an exception type (or factory): raise one
            raise self.script()
        if self.script == "real":
            return super().send(data)
        size = len(memoryview(data))
        return size if self.script == "all" else min(self.script, size)

    def send(self, data, flags=0):
        self.calls["send"] += 1
        return self._take(data)

    def sendall(self, data, flags=0):
        self.calls["sendall"] += 1
        if self._take(data) < len(memoryview(data)):  # as sendall() on a full buffer
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    def setblocking(self, flag):
        self.mode_calls.append(f"setblocking({flag!r})")
        super().setblocking(flag)

    def settimeout(self, value):
        self.mode_calls.append(f"settimeout({value!r})")
        super().settimeout(value)

    def close(self):
        self.calls["close"] += 1
        super().close()


@contextlib.contextmanager
def _probe_sockets(scripts):
    """``{label: _ProbeSocket}`` for ``{label: script}``; every socket closed on exit."""
    made, peers = {}, []
    try:
        for label, script in scripts.items():
            ours, theirs = socket.socketpair()
            peers.append(theirs)
            made[label] = _ProbeSocket(ours, script, label)
        yield made
    finally:
        for sock in [*made.values(), *peers]:
            sock.close()


def RESET():
    return ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")


def TIMED_OUT():
    return TimeoutError(errno.ETIMEDOUT, "Connection timed out")


def FULL():
    return BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")


# label -> (what its send() does, the data pending, what must be left in wlist: None = gone)
SEND_PROBE = {
    "A": ("all", b"hello ", None),
    "B": (2, b"world", b"rld"),
    "C": (FULL, b"full", b"full"),
    "D": (RESET, b"gone", None),
    "E": (TIMED_OUT, b"lost", None),
    "F": ("all", b"last", None),
}


def probe_send_pending(send_pending) -> None:
    """Call the learner's ``send_pending`` on sockets whose ``send()`` we script; raise
    :class:`NotYet` naming the first rule it breaks."""
    with _probe_sockets({k: v[0] for k, v in SEND_PROBE.items()}) as socks:
        items = [[socks[k], data] for k, (_, data, _) in SEND_PROBE.items()]
        wlist = list(items)
        out = try_learner(
            send_pending,
            wlist,
            limit=STUCK_AFTER,
            name="send_pending",
            sockets=list(socks.values()),
            hang_hint=WAIT_HINT,
        )
        _judge_send_probe(socks, wlist, out.error)
    with _probe_sockets({"G": "real"}) as socks:
        out = try_learner(
            send_pending,
            [[socks["G"], "text, not bytes"]],
            limit=STUCK_AFTER,
            name="send_pending",
            sockets=list(socks.values()),
        )
        if out.error is None:
            raise NotYet(
                "a pending reply was a str, not bytes, so send() raised TypeError (a "
                "bug, not a network error), and send_pending() hid it",
                CATCH_ALL_HINT,
            )


def _judge_send_probe(socks, wlist, error) -> None:
    probe = (
        "six pending pairs (sent whole, sent in part, a full buffer, a reset, a timed-out "
        "connection, sent whole)"
    )
    for sock in socks.values():
        if sock.calls["sendall"]:
            raise NotYet(f"with {probe}, send_pending() called sendall()", SENDALL_HINT)
    for sock in socks.values():
        changed = [
            c
            for c in sock.mode_calls
            if c not in ("setblocking(False)", "settimeout(0)", "settimeout(0.0)")
        ]
        if changed or sock.gettimeout() != 0.0:
            what = changed[0] if changed else "a blocking mode"
            raise NotYet(f"send_pending() called {what} on a client's socket", SEND_MODE_HINT)
    if error is not None:
        if isinstance(error, BlockingIOError):
            raise NotYet(
                "send() raised BlockingIOError (the socket's buffer is full) and "
                "send_pending() let it through",
                "BlockingIOError means 'not now': catch it and leave the pair as it "
                "is, for the next round.",
            )
        if isinstance(error, OSError):
            raise NotYet(
                f"send() raised {describe_exception(error)} (the client has gone) and "
                "send_pending() let it through",
                "catch OSError after BlockingIOError and remove the pair: "
                "ConnectionResetError, BrokenPipeError and TimeoutError are all "
                "OSErrors (TimeoutError is not a ConnectionError).",
            )
        raise NotYet(
            f"with {probe}, send_pending() raised {describe_exception(error)}",
            "read the error, fix the function, run its cell again.",
        )
    for sock in socks.values():
        if sock.calls["send"] > 1:
            raise NotYet(
                f"send() was called {sock.calls['send']} times for one pair in one "
                "call of send_pending()",
                ONE_SEND_HINT,
            )
    unsent = [label for label, sock in socks.items() if not sock.calls["send"]]
    if unsent:
        raise NotYet(f"with {probe}, send() was never called for {len(unsent)} of them", SKIP_HINT)
    odd = [
        item
        for item in wlist
        if not (isinstance(item, list) and len(item) == 2 and item[0] in socks.values())
    ]
    if odd:
        raise NotYet(
            f"wlist now holds {type(odd[0]).__name__} items, not the [sock, data] "
            "pairs it was given",
            "change the pair itself, item[1] = data[sent:], and remove pairs from "
            "wlist: the loop adds to a pending pair, so it must stay a list.",
        )
    left = {
        item[0].label: bytes(item[1])
        if isinstance(item[1], (bytes, bytearray, memoryview))
        else item[1]
        for item in wlist
    }
    if sorted(left) == sorted(SEND_PROBE) and all(left[k] == SEND_PROBE[k][1] for k in SEND_PROBE):
        raise NotYet(
            "wlist was not changed: the pairs sent are all still in it",
            "change the list you were given (wlist.remove(item), or wlist[:] = ...): "
            "wlist = [...] only gives your own variable a new list.",
        )
    for label in ("A", "F"):
        if label in left:
            raise NotYet(
                f"a pair whose data send() took whole is still in wlist (holding {left[label]!r})",
                "remove a pair once all its data is sent: the loop closes a client "
                "that said goodbye only once it has nothing pending.",
            )
    if "B" not in left:
        raise NotYet(
            "after send() took 2 of 5 bytes, the pair was removed: the other 3 are "
            "lost (the article's mistake)",
            "send() may take only part of the data: keep the rest, "
            "item[1] = data[sent:], and remove the pair only once all is sent.",
        )
    if left["B"] == b"world":
        raise NotYet(
            "after send() took 2 of b'world', the pair still holds all of it: those 2 "
            "bytes would be sent twice",
            "keep only what send() did not take: item[1] = data[sent:].",
        )
    if left["B"] != b"rld":
        raise NotYet(
            f"after send() took 2 of b'world', the pair holds {left['B']!r}, expected b'rld'",
            "keep only what send() did not take: item[1] = data[sent:].",
        )
    if left.get("C") != b"full":
        raise NotYet(
            "a pair whose send() raised BlockingIOError was "
            + ("removed" if "C" not in left else f"changed to {left['C']!r}"),
            "BlockingIOError means the socket's buffer is full, not that the client "
            "has gone: leave the pair as it is, for the next round.",
        )
    for label, error in (("D", "ConnectionResetError"), ("E", "TimeoutError")):
        if label in left:
            raise NotYet(
                f"a pair whose send() raised {error} is still in wlist",
                "the client has gone: remove its pair (the loop then sees the end of "
                "the connection when it reads), or wlist grows forever.",
            )
    for label in ("A", "B", "C", "F"):
        if socks[label].calls["close"]:
            raise NotYet(
                "send_pending() closed the socket of a client that is still there",
                "closing is the loop's job (close_done(), once a client has said "
                "goodbye and got its last reply): send_pending() only sends.",
            )


def probe_accept_new(accept_new) -> None:
    """Call the learner's ``accept_new`` on a listener with nobody waiting, with
    :data:`WAITING` clients waiting, and with an ``accept()`` that raises a bug."""
    with socket.create_server(("127.0.0.1", 0)) as empty:
        empty.setblocking(False)
        out = try_learner(
            accept_new, empty, limit=STUCK_AFTER, name="accept_new", hang_hint=ACCEPT_HANG_HINT
        )
        if isinstance(out.error, BlockingIOError):
            raise NotYet(
                f"with nobody waiting, accept_new() raised {describe_exception(out.error)}",
                ACCEPT_HINT,
            )
        if out.error is not None:
            raise NotYet(
                f"with nobody waiting, accept_new() raised {describe_exception(out.error)}",
                "read the error, fix the function, run its cell again.",
            )
        if out.value != []:
            _close_found(out.value)
            raise NotYet(
                f"with nobody waiting it returned {out.value!r}, expected []",
                "return the list of sockets accepted: [] when nobody is waiting.",
            )

    with socket.create_server(("127.0.0.1", 0)) as listener, contextlib.ExitStack() as stack:
        listener.setblocking(False)
        for _ in range(WAITING):
            stack.enter_context(socket.create_connection(listener.getsockname(), timeout=2))
        select.select([listener], [], [], 2.0)  # the connections are in the accept queue
        out = try_learner(
            accept_new, listener, limit=STUCK_AFTER, name="accept_new", hang_hint=ACCEPT_HANG_HINT
        )
        got = out.value
        stack.callback(_close_found, got)
        if out.error is not None:
            hint = (
                PAIR_HINT
                if "'tuple' object" in str(out.error)
                else ("read the error, fix the function, run its cell again.")
            )
            raise NotYet(
                f"with {WAITING} clients waiting, accept_new() raised "
                f"{describe_exception(out.error)}",
                hint,
            )
        _judge_accepted(got, listener)


def _not_a_list_of_sockets(got) -> tuple[str, str] | None:
    """(message, hint) if what ``accept_new()`` returned is not a list of sockets."""
    if not isinstance(got, list):
        return (
            f"accept_new() returned a {type(got).__name__}, not a list of sockets",
            "return a list of the sockets accepted: [] when nobody is waiting.",
        )
    odd = [item for item in got if not isinstance(item, socket.socket)]
    if odd:
        return (
            f"accept_new() returned a list of {type(odd[0]).__name__}, not of sockets",
            PAIR_HINT,
        )
    return None


def _judge_accepted(got, listener) -> None:
    problem = _not_a_list_of_sockets(got)
    if problem:
        raise NotYet(*problem)
    if len(got) < WAITING:
        raise NotYet(
            f"with {WAITING} clients waiting, accept_new() returned "
            + ("none" if not got else f"only {len(got)}"),
            "accept in a loop until accept() raises BlockingIOError: every client "
            "waiting, in one call, so that nobody waits a round per newcomer.",
        )
    if any(sock.fileno() == -1 for sock in got):
        raise NotYet(
            "accept_new() returned closed sockets",
            "return the sockets open: the loop polls them next.",
        )
    modes = [_mode(sock) for sock in got if _mode(sock)]
    if modes:
        raise NotYet(
            f"accept_new() returned sockets in {modes[0]}: {_harm(modes[0])}", ACCEPT_MODE_HINT
        )
    if listener.fileno() == -1 or _mode(listener):
        raise NotYet(
            "accept_new() changed the listening socket ("
            + ("closed it" if listener.fileno() == -1 else _mode(listener))
            + ")",
            ACCEPT_HANG_HINT,
        )


class _BuggyListener(socket.socket):
    """A listening socket whose ``accept()`` raises a ``TypeError``: a bug, not a network
    error (for the catch-all probe)."""

    def accept(self):
        raise TypeError("an error that is not an OSError (raised by the checker)")


def probe_catch_all(accept_new) -> None:
    """Call the learner's ``accept_new`` on a listener whose ``accept()`` raises a bug
    (a ``TypeError``); raise :class:`NotYet` if the learner's code hides it."""
    real = socket.create_server(("127.0.0.1", 0))
    with _BuggyListener(real.family, real.type, real.proto, fileno=real.detach()) as buggy:
        buggy.setblocking(False)
        out = try_learner(
            accept_new, buggy, limit=STUCK_AFTER, name="accept_new", hang_hint=ACCEPT_HANG_HINT
        )
        if out.error is None:
            _close_found(out.value)
            raise NotYet(
                "accept() raised a TypeError (standing for a bug, not a network "
                "error) and accept_new() hid it",
                "catch BlockingIOError (nobody is waiting), not Exception: a "
                "catch-all (except Exception, or a bare except) hides bugs, as the "
                "article's did.",
            )


# ------------------------------------------------------------------------- live
def _served_beside_stragglers(server, requests: int = 20) -> tuple[list[float], float]:
    """A client that sends and never reads its echo, a client that got its reply and went
    quiet; then another client's ``requests``, one at a time. Returns the seconds each reply
    took (``inf`` for one that did not come within :data:`REPLY_WAIT`, and then stops), and
    the median seconds per call of the learner's step while the first client's echo waited
    (every round then has a send to try)."""
    delays: list[float] = []
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(socket.socket())
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.settimeout(2.0)
        reader.connect(server.address)
        with contextlib.suppress(OSError):
            reader.sendall(b"x" * (64 * 1024))  # its echo fills the buffers: send() refuses
        quiet = stack.enter_context(connect(server.address, timeout=2.0))
        try:
            quiet.sendall(b"hi")
            recv_exactly(quiet, 2, timeout=REPLY_WAIT)
        except OSError:
            return [float("inf")], 0.0
        per_call = server.call_time()
        active = stack.enter_context(connect(server.address, timeout=2.0))
        for _ in range(requests):
            start = time.perf_counter()
            try:
                active.sendall(b"ping")
                recv_exactly(active, 4, timeout=REPLY_WAIT)
            except OSError:
                delays.append(float("inf"))
                break
            delays.append(time.perf_counter() - start)
    return delays, per_call


@checker
def check_send_pending(send_pending):
    """Check ``send_pending(wlist)`` against every rule of exercise 1 (module docstring)."""
    probe_send_pending(send_pending)

    with _learner_server("send_pending", send_pending=send_pending, sndbuf=SNDBUF) as server:
        delays, per_call = _served_beside_stragglers(server)
        _raise_loop_error(server, "send_pending")
        if delays[-1] == float("inf"):
            raise NotYet(
                f"beside a client that went quiet after its reply and one that does "
                f"not read, a client got no reply within {REPLY_WAIT:g} s: the loop "
                "was stuck",
                WAIT_HINT,
            )
        if per_call > SLOW_CALL:
            raise NotYet(
                f"with a reply waiting for a client that does not read, "
                f"send_pending() took {per_call * 1e3:.0f} ms per call (median): it "
                "waits, and every client waits with it",
                WAIT_HINT,
            )
        median = statistics.median(delays)
        if median > SLOW_REPLY:
            raise NotYet(
                f"beside a client that does not read, replies took "
                f"{median * 1e3:.0f} ms (median of {len(delays)} requests): "
                "send_pending() waits, and every client waits with it",
                WAIT_HINT,
            )
        outcome = echo_payload(server.address, PAYLOAD, timeout=10.0, quiet=1.0)
        # A reset after the client hung up is the echo's fault, reported from the outcome.
        _raise_loop_error(server, "send_pending", ignore=ConnectionError)
        if outcome.received > outcome.sent:
            raise NotYet(
                f"{outcome.received:,} bytes came back for {outcome.sent:,} sent: "
                "some were sent twice",
                ONE_SEND_HINT,
            )
        if outcome.lost:
            raise NotYet(
                f"{outcome.lost:,} of {outcome.sent:,} bytes never came back "
                "(1 MiB echo, small buffers)",
                "send() may take only part of the data: keep the rest, "
                "item[1] = data[sent:], and remove the pair only once all is sent.",
            )
        if not outcome.intact:
            raise NotYet(
                "the echo of 1 MiB came back scrambled",
                "send the rest of a partial send before anything else for that socket.",
            )
        _raise_loop_error(server, "send_pending")
        load = run_load(server.address, clients=10, messages=20, size=64, timeout=5.0)
        _raise_loop_error(server, "send_pending")
        if not load.ok:
            first = load.errors[0] if load.errors else "incomplete"
            raise NotYet(
                f"10 clients x 20 messages: {first}",
                "every pending pair needs one send() per round; remove it once sent.",
            )
        if not half_close_sees_eof(server.address, wait=REPLY_WAIT):
            _raise_loop_error(server, "send_pending")
            raise NotYet(
                "a client that said goodbye got its reply but never the end of the "
                "connection: its pair was never removed from wlist",
                "remove a pair once all its data is sent: the loop closes a client "
                "that said goodbye only once it has nothing pending.",
            )

    with _learner_server(
        "send_pending", send_pending=send_pending, interval=BURST_INTERVAL
    ) as server:
        delays = burst(server.address, BURST_CLIENTS, timeout=3.0)
        _raise_loop_error(server, "send_pending")
    if delays[-1] == float("inf"):
        raise NotYet(
            f"{delays.count(float('inf'))} of {BURST_CLIENTS} clients got no reply",
            "remove a pair from wlist only after its data was sent.",
        )
    rounds = send_rounds(server.events)  # once stopped: every send is in the log
    if rounds > 2:
        raise NotYet(
            f"{BURST_CLIENTS} replies pending at once took {rounds} rounds to send", SKIP_HINT
        )
    return (
        f"a 1 MiB echo came back intact through {SNDBUF}-byte buffers, 200 messages "
        f"from 10 clients too, a quiet client and one that does not read held nobody "
        f"up, and {BURST_CLIENTS} pending replies went out in one round"
    )


@checker
def check_accept_new(accept_new):
    """Check ``accept_new(listener)`` against every rule of exercise 2 (module docstring)."""
    probe_accept_new(accept_new)
    probe_catch_all(accept_new)

    with _learner_server("accept_new", accept_new=accept_new) as server:
        starved = is_starved(server, wait=REPLY_WAIT)
        _raise_loop_error(server, "accept_new")
        if starved:
            raise NotYet(
                "a client that sends nothing froze the whole server: the other client got no reply",
                ACCEPT_MODE_HINT,
            )
        load = run_load(server.address, clients=20, messages=5, size=64, timeout=5.0)
        _raise_loop_error(server, "accept_new")
        if not load.ok:
            raise NotYet(
                f"20 clients at once: {load.errors[0] if load.errors else 'incomplete'}",
                "accept in a loop until BlockingIOError, returning every socket.",
            )
        _raise_if_slow(server, "accept_new")
        if server.events.count(ACCEPT) < 22:
            raise NotYet(
                f"only {server.events.count(ACCEPT)} of 22 clients were accepted",
                "accept in a loop until BlockingIOError, returning every socket.",
            )
    return "a quiet client no longer freezes anyone, and 20 clients at once were all served"


__all__ = [
    "LearnerClassicServer",
    "check_accept_new",
    "check_send_pending",
    "probe_accept_new",
    "probe_catch_all",
    "probe_send_pending",
]
