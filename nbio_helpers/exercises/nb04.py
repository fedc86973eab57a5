"""Checkers for notebook 04 (select).

* :func:`check_select_round` — the learner writes one turn of a select loop,
  ``select_round(listener, outbufs, timeout)``; the checker runs it in a loop in a background
  thread as a real echo server and proves it with idle clients (no spinning), closed clients
  (no leak), 100 concurrent clients and an 8 MiB echo through small buffers (no lost bytes).
* :func:`check_prediction` — predict-then-measure questions, checked with an explanation.

Usage in the notebook::

    from nbio_helpers.exercises.nb04 import check_select_round, check_prediction
    check_select_round(select_round)
    check_prediction("idle_many_clients", my_prediction)
"""
from __future__ import annotations

import itertools
import selectors
import socket
import threading
import time

from ..clients import connect, run_load
from ..cpu import ThreadCPU
from ..limits import OUT_OF_DESCRIPTORS, fd_limit
from . import (NOT_IMPLEMENTED_HINT, NOT_IMPLEMENTED_MESSAGE, LearnerBaseException,
               LearnerStopped, NotYet, answer_of, base_exception_failure, checker,
               describe_exception, guarded, running_for, stop_learner_code, where)

ROUND_TIMEOUT = 0.05
"""The ``timeout`` the checker passes to the learner's ``select_round``."""

SPIN_ROUNDS = 100
"""More rounds than this in :data:`IDLE_WINDOW` seconds with idle clients = a spinning loop
(a loop that sleeps in select() makes about IDLE_WINDOW / ROUND_TIMEOUT = 6)."""

STUCK_AFTER = 1.0
"""A round still running after this many seconds (20 times ROUND_TIMEOUT) is stuck."""

IDLE_WINDOW = 0.3
SNDBUF = 64 * 1024
BIG_PAYLOAD = 8 * 1024 * 1024

_loops = itertools.count(1)


class LearnerLoop:
    """Runs ``select_round(listener, outbufs, ROUND_TIMEOUT)`` again and again in a daemon thread.

    The listener has a small send buffer, inherited by accepted sockets, so that big replies
    need several ``send()`` calls. ``rounds`` counts completed calls, ``cpu`` the thread's CPU.
    The thread is named ``learner-…`` so that a learner's loop that hangs is not mistaken for
    a server of the package; :meth:`stop` still does everything it can to end it.
    """

    def __init__(self, select_round, sndbuf: int = SNDBUF):
        self.select_round = guarded(select_round, name="select_round")
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.listener.setblocking(False)
        self.address = self.listener.getsockname()[:2]
        self.outbufs: dict = {}
        self.rounds = 0
        self.error: BaseException | None = None
        self.cpu = ThreadCPU()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"learner-select-loop-{next(_loops)}")

    def start(self) -> "LearnerLoop":
        self._thread.start()
        return self

    def _run(self) -> None:
        self.cpu.enter()
        try:
            while not self._stop.is_set():
                self.select_round(self.listener, self.outbufs, ROUND_TIMEOUT)
                self.rounds += 1
                self.cpu.sample()   # where CPU time is self-reported (macOS)
        except LearnerStopped:        # stopped by the harness: reported as stuck, or not at all
            pass
        except BaseException as exc:  # the checker reports it; the thread just ends
            self.error = exc
        finally:
            self.cpu.exit()

    def stuck(self) -> bool:
        """True if the current ``select_round()`` call has run for more than STUCK_AFTER s."""
        return running_for(self._thread) > STUCK_AFTER

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def raise_if_failed(self) -> None:
        """Turn an exception that ended the learner's loop, or a round that does not end,
        into a :class:`NotYet`."""
        if self.stuck():
            place = where(self._thread)
            raise NotYet(f"select_round() did not return within {STUCK_AFTER:g} s (it was "
                         f"given timeout={ROUND_TIMEOUT:g})"
                         + (f": it was still running {place}" if place else ""),
                         "one call is one turn: pass timeout to select.select(), serve what "
                         "it reported ready, then return; never loop inside select_round(), "
                         "and never make a blocking call (the sockets are non-blocking).")
        if self.listener.fileno() == -1 and not self._stop.is_set():
            raise NotYet("select_round() closed the listening socket it was given",
                         "the listener belongs to the caller and serves every future client: "
                         "close only the client sockets whose peer has gone (recv() == b'').")
        if self.error is None:
            return
        if isinstance(self.error, LearnerBaseException):
            raise NotYet(*base_exception_failure("select_round()", self.error.original))
        if isinstance(self.error, NotImplementedError):
            raise NotYet(NOT_IMPLEMENTED_MESSAGE, NOT_IMPLEMENTED_HINT)
        if isinstance(self.error, OSError) and self.error.errno in OUT_OF_DESCRIPTORS:
            raise NotYet(f"this process ran out of file descriptors (soft limit {fd_limit()}) "
                         "while your loop accepted clients",
                         "this is the machine's limit, not a mistake in your loop: restart the "
                         "kernel, or raise the limit (`ulimit -n 4096` in the shell that starts "
                         "JupyterLab), and check again.")
        raise NotYet(f"select_round() raised {describe_exception(self.error)}",
                     "read the error message; remember that a closed socket must also be "
                     "removed from outbufs, or select() will be given a closed socket.")

    def stop(self) -> bool:
        """End the loop and close every socket. Returns False if the thread would not end."""
        self._stop.set()
        self._thread.join(1.0)
        if self._thread.is_alive():
            # A select() without timeout wakes up for a new client; a blocked send() or recv()
            # for a shutdown socket.
            try:
                socket.create_connection(self.address, timeout=1.0).close()
            except OSError:
                pass
            for sock in list(self.outbufs):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._thread.join(1.0)
        if self._thread.is_alive():       # still in the learner's code: the harness stops it
            stop_learner_code([self._thread.ident], sockets=[self.listener, *self.outbufs])
            self._thread.join(0.5)
        ended = not self._thread.is_alive()
        for sock in list(self.outbufs):
            sock.close()
        self.listener.close()
        return ended


def wait_for(predicate, timeout: float) -> bool:
    """Check ``predicate()`` every few ms until true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def big_echo(address, payload: bytes, timeout: float = 15.0, stall: float = 2.0) -> bytes:
    """Send ``payload`` while reading the echo; return what came back.

    Gives up after ``timeout`` seconds, or after ``stall`` seconds without a byte (lost
    bytes are never coming), or when the server closes.
    """
    sock = socket.create_connection(address, timeout=5.0)
    sock.setblocking(False)
    out = memoryview(payload)
    got = bytearray()
    deadline = time.monotonic() + timeout
    last_progress = time.monotonic()
    with sock, selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while len(got) < len(payload):
            now = time.monotonic()
            if now >= deadline or now - last_progress >= stall:
                break
            for _, mask in sel.select(timeout=0.1):
                try:
                    if mask & selectors.EVENT_WRITE and out:
                        out = out[sock.send(out):]
                        if not out:
                            sel.modify(sock, selectors.EVENT_READ)
                    if mask & selectors.EVENT_READ:
                        chunk = sock.recv(1 << 20)
                        if not chunk:
                            return bytes(got)
                        got += chunk
                        last_progress = time.monotonic()
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    return bytes(got)
    return bytes(got)


@checker
def check_select_round(select_round):
    """Run the learner's ``select_round(listener, outbufs, timeout)`` as a real echo server.

    Passes if: a first echo works; 10 idle clients do not make the loop spin; clients that
    close are removed from ``outbufs``; 100 concurrent clients are all echoed; an 8 MiB
    payload comes back byte for byte through a small send buffer.
    """
    if not callable(select_round):
        raise NotYet(f"expected a function, got {type(select_round).__name__}",
                     "pass the function itself: check_select_round(select_round).")
    loop = LearnerLoop(select_round).start()
    try:
        _first_echo(loop)
        _no_leak(loop, 1)
        _idle_rounds(loop)
        _no_leak(loop, 10)
        _hundred_clients(loop)
        _big_payload(loop)
    finally:
        ended = loop.stop()
    if not ended:
        raise NotYet("select_round() did not return after the checker stopped calling it",
                     "pass timeout to select.select() so that every round ends.")
    return ("your loop echoed 100 clients and 8 MiB byte for byte, closed every finished "
            "connection, and slept while clients were idle")


def _first_echo(loop: LearnerLoop) -> None:
    got = b""
    try:
        with connect(loop.address, timeout=3.0) as sock:
            sock.sendall(b"hello")
            sock.settimeout(0.05)   # short waits, to notice at once if the loop has crashed
            deadline = time.monotonic() + 3.0
            while (len(got) < 5 and loop.error is None and time.monotonic() < deadline
                   and not loop.stuck()):
                try:
                    chunk = sock.recv(5 - len(got))
                except socket.timeout:
                    continue
                if not chunk:
                    break
                got += chunk
    except OSError as exc:
        loop.raise_if_failed()
        raise NotYet(f"a client could not talk to your server ({describe_exception(exc)})",
                     "accept() when the listener is readable, and make the new socket "
                     "non-blocking.")
    loop.raise_if_failed()
    if got != b"HELLO":
        raise NotYet(f"a client sent b'hello' and got {got!r} back",
                     "put the listener and every client socket in rlist; accept() when the "
                     "listener is readable; recv() from a readable client, upper-case the "
                     "data and append it to outbufs[sock]; send it when the socket is writable.")


def _idle_rounds(loop: LearnerLoop) -> None:
    idle = [connect(loop.address, timeout=3.0) for _ in range(10)]
    try:
        if not wait_for(lambda: len(loop.outbufs) >= 10 or loop.error or loop.stuck(), 3.0):
            loop.raise_if_failed()
            raise NotYet("10 clients connected but the loop did not accept them all in 3 s",
                         "accept() whenever the listener is readable, and add the new socket "
                         "to outbufs with an empty bytearray().")
        r0, c0, t0 = loop.rounds, loop.cpu.total(), time.perf_counter()
        time.sleep(IDLE_WINDOW)
        rounds, cpu = loop.rounds - r0, (loop.cpu.total() - c0) / (time.perf_counter() - t0)
        loop.raise_if_failed()
        if rounds > SPIN_ROUNDS:
            raise NotYet(f"with 10 idle clients your loop went round {rounds:,} times in "
                         f"{IDLE_WINDOW} s, using about {cpu:.0%} of a core: it spins",
                         "a loop that never sleeps has one of two causes: idle sockets in "
                         "wlist (an idle socket is always writable: put a socket in wlist only "
                         "while its outbufs entry holds bytes to send), or select() not given "
                         "the timeout argument (pass timeout itself, not 0).")
    finally:
        for sock in idle:
            sock.close()


def _no_leak(loop: LearnerLoop, closed: int) -> None:
    if not wait_for(lambda: not loop.outbufs or loop.error or loop.stuck(), 2.0):
        loop.raise_if_failed()
        raise NotYet(f"{closed} client(s) closed, but {len(loop.outbufs)} socket(s) are still "
                     "in outbufs: the connections leak (and select() keeps reporting them)",
                     "recv() returning b'' means the client closed: close that socket and "
                     "delete it from outbufs.")
    loop.raise_if_failed()


def _hundred_clients(loop: LearnerLoop) -> None:
    result = run_load(loop.address, clients=100, messages=5, size=64, timeout=10.0)
    loop.raise_if_failed()
    if not result.ok:
        first = result.errors[0] if result.errors else "some echoes were missing"
        raise NotYet(f"with 100 concurrent clients, {result.completed} of 500 echoes came back "
                     f"right (first problem: {first})",
                     "serve every socket select() reported, not only the first one.")
    if not wait_for(lambda: not loop.outbufs or loop.error or loop.stuck(), 2.0):
        raise NotYet(f"{len(loop.outbufs)} of 100 finished clients are still in outbufs: "
                     "the connections leak",
                     "recv() returning b'' means the client closed: close and delete it.")


def _big_payload(loop: LearnerLoop) -> None:
    payload = bytes(range(97, 123)) * (BIG_PAYLOAD // 26) + b"x" * (BIG_PAYLOAD % 26)
    got = big_echo(loop.address, payload)
    loop.raise_if_failed()
    if len(got) < len(payload):
        raise NotYet(f"a client sent 8 MiB and only {len(got):,} of {len(payload):,} bytes came "
                     "back: the rest was lost",
                     "send() may take only part of the buffer: it returns how many bytes it "
                     "took; delete just those (del outbufs[sock][:sent]) and keep the rest "
                     "for the next round.")
    if got != payload.upper():
        raise NotYet("a client sent 8 MiB and got the right number of bytes, but not the "
                     "right bytes (out of order or changed)",
                     "append each reply at the end of outbufs[sock] and send from its start.")


# ------------------------------------------------------------------------- predictions
QUESTIONS = {
    "idle_many_clients": (
        "c",
        "select() puts the thread to sleep in the kernel until a socket is ready. Idle clients "
        "make nothing ready, so however many there are, the thread is not even scheduled: "
        "about 0 of a core with 20 clients or with 300.",
    ),
    "heartbeat_wakeups": (
        "b",
        "with nothing else happening, select() returns once per timeout, a hundred times "
        "per second: about 50 wake-ups in half a second. A timeout is cheap periodic work, "
        "not polling: between wake-ups the thread sleeps.",
    ),
    "spin_one_client": (
        "b",
        "the loop spins as soon as one socket is in wlist with nothing to send: select() "
        "returns at once, the loop goes round, select() returns at once... One idle client "
        "is enough to burn a full core, and 100 cannot burn more than one: it is one thread.",
    ),
}
"""Question id -> (right choice, explanation). The questions are in notebook 04."""


@checker
def check_prediction(question: str, prediction):
    """Check a predict-then-measure answer: ``prediction`` (a function returning "a", "b" or
    "c", or the letter itself)."""
    if question not in QUESTIONS:
        raise NotYet(f"there is no question {question!r}",
                     f"use one of: {', '.join(QUESTIONS)}.")
    right, why = QUESTIONS[question]
    answer = answer_of(prediction)
    if not isinstance(answer, str) or answer.strip().lower().strip("()") not in ("a", "b", "c"):
        raise NotYet(f"the answer should be one of 'a', 'b' or 'c', not {answer!r}",
                     "return a single letter, e.g. return 'a'.")
    answer = answer.strip().lower().strip("()")
    if answer != right:
        raise NotYet(f"({answer}) is not what happens.", why)
    return f"({right}) — {why}"
