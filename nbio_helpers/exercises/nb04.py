"""Checkers for notebook 04 (select).

* :func:`check_select_round` — the learner writes one turn of a select loop,
  ``select_round(listener, outbufs, finished, timeout)``; the checker runs it again and again
  in a background thread as a real echo server, and measures what the exercise text asks.
* :func:`check_prediction` — predict-then-measure questions, checked with an explanation.

Usage in the notebook::

    from nbio_helpers.exercises.nb04 import check_select_round, check_prediction
    check_select_round(select_round)
    check_prediction("idle_many_clients", my_prediction)

The rules exercise 1 states, and the stage of :func:`check_select_round` that enforces each
(the typical mistake it catches, and the words its hint starts from):

=====================================================  =====================================
rule (notebook 04, exercise 1)                         stage: the mistake it rejects
=====================================================  =====================================
one ``select()`` per call, with ``timeout``             ``_idle_rounds``: ``timeout=0`` or
                                                       idle sockets in wlist ("it spins");
                                                       a round shorter than the timeout
                                                       with idle clients ("returns more
                                                       often than its timeout": a short
                                                       sleep, then trying every socket);
                                                       CPU while idle > 0.2 of a core
                                                       ("uses ... while clients are idle":
                                                       a wait that spins)
select() wakes up as soon as a socket is ready          ``_prompt_replies``: a loop that
                                                       sleeps ``timeout`` and then tries
                                                       every socket without select()
                                                       ("sleeps, then tries every socket")
accept, make non-blocking, empty bytearray (step 2)     ``_first_echo``; ``_quiet_client``:
                                                       an accepted socket left blocking
                                                       (a client that does not read freezes
                                                       the loop in ``send()``)
``b''`` with nothing pending: close, delete (step 3)    ``_no_leak``: "the connections leak"
a ``ConnectionError``: close and delete at once         ``_quiet_client``: the quiet client
                                                       resets; not caught ("raised
                                                       ConnectionResetError"), or kept
send, keep what send() did not take (step 4)            ``_big_payload``: "the rest was lost"
``b''`` with replies pending: into ``finished``,        ``_half_close``: closed at once
keep sending, out of rlist, close when sent             ("b'' means the client will send no
(steps 1, 3, 4)                                        more"); kept in rlist ("stays
                                                       readable for ever"); never closed
                                                       ("the stream never ended" / leak of
                                                       ``finished``)
serve every ready socket                                ``_hundred_clients``
=====================================================  =====================================

Step 5 (``BlockingIOError`` after ``select()``; ``ConnectionAbortedError`` from ``accept()``)
cannot be provoked on demand on every system; a loop that lets such an error escape still
gets a verdict naming the error (``raise_if_failed``).
"""

from __future__ import annotations

import random
import socket
import statistics
import threading
import time

from nbio_helpers.clients import close_with_reset, connect, run_load, stream_echo
from nbio_helpers.exercises import NotYet, answer_of, checker, describe_exception, judge_error
from nbio_helpers.exercises.harness import LearnerThread, guarded, stop_learner_code
from nbio_helpers.limits import OUT_OF_DESCRIPTORS, fd_limit
from nbio_helpers.server import wait_until

ROUND_TIMEOUT = 0.05
"""The ``timeout`` the checker passes to the learner's ``select_round``."""

IDLE_WINDOW = 0.3
"""Seconds during which the checker counts the rounds and CPU of the loop, clients idle."""

SPIN_ROUNDS = 100
"""More rounds than this in :data:`IDLE_WINDOW` seconds with idle clients = a spinning loop."""

EARLY_ROUNDS = 2 * round(IDLE_WINDOW / ROUND_TIMEOUT) + 3
"""More rounds than this (but not a spin) = rounds shorter than the timeout: a select() that
waits for nothing ready returns once per timeout, about IDLE_WINDOW / ROUND_TIMEOUT = 6 times
(it can only return later, never sooner, on a loaded machine)."""

IDLE_CPU = 0.2
"""More than this share of a core while every client is idle = the loop does not sleep. A
sleeping select() uses about 0; load on the machine can only lower a thread's share."""

PROMPT_TIMEOUT = 0.5
"""The ``timeout`` passed while replies are timed: long, so that a loop that sleeps it out
answers late by a margin no machine's noise can hide."""

PROMPT_REPLY = 0.05
"""A reply later than this (seconds) is late: select() returns as soon as a socket is ready
(well under a millisecond on a quiet machine), a loop that sleeps 0.5 s answers ~0.25 s late."""

PROMPT_REQUESTS, PROMPT_LATE = 9, 5
"""Requests timed; as soon as this many were late (a majority) the loop is judged slow."""

STUCK_AFTER = 1.0
"""A round still running after this many seconds is stuck."""

SNDBUF = 64 * 1024
RCVBUF = 64 * 1024
BIG_PAYLOAD = 8 * 1024 * 1024
HALF_CLOSE_PAYLOAD = 4 * 1024 * 1024
QUIET_PAYLOAD = 4 * 1024 * 1024


class LearnerLoop:
    """Runs ``select_round(listener, outbufs, finished, timeout)`` again and again in a
    :class:`~nbio_helpers.exercises.harness.LearnerThread` (``runner``, named
    ``learner-select-loop-…``: ``cpu`` is its CPU, ``error`` what ended it).

    The listener has a small send buffer, inherited by accepted sockets, so that big replies
    need several ``send()`` calls. ``rounds`` counts completed calls; ``timeout`` is what the
    next call is given (the checker changes it between stages). :meth:`stop` does everything
    it can to end a learner's loop that hangs.
    """

    def __init__(self, select_round, sndbuf: int = SNDBUF):
        self.select_round = guarded(select_round, name="select_round")
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.listener.setblocking(False)
        self.address = self.listener.getsockname()[:2]
        self.outbufs: dict = {}
        self.finished: set = set()
        self.timeout = ROUND_TIMEOUT
        self.rounds = 0
        self._stop = threading.Event()
        self.runner = LearnerThread(self._rounds, name="select-loop")
        self.cpu = self.runner.cpu

    def _rounds(self) -> None:
        while not self._stop.is_set():
            self.select_round(self.listener, self.outbufs, self.finished, self.timeout)
            self.rounds += 1
            self.cpu.sample()  # where CPU time is self-reported (macOS)

    def start(self) -> LearnerLoop:
        self.runner.start()
        return self

    @property
    def error(self) -> BaseException | None:
        """What ended the learner's loop (a ``BaseException`` as it was raised), if anything."""
        return self.runner.error

    @error.setter
    def error(self, error: BaseException | None) -> None:
        self.runner.error = error

    def stuck(self) -> bool:
        """True if the current ``select_round()`` call has run for more than STUCK_AFTER s."""
        return self.runner.running_for() > STUCK_AFTER

    @property
    def alive(self) -> bool:
        return self.runner.alive

    def where(self) -> str:
        """Where the learner's code is running now ("line 4 of your cell: `...`"), or ""."""
        return self.runner.where() or ""

    def raise_if_failed(self) -> None:
        """Turn an exception that ended the learner's loop, or a round that does not end,
        into a :class:`NotYet`."""
        if self.stuck():
            place = self.where()
            raise NotYet(
                f"select_round() did not return within {STUCK_AFTER:g} s (it was "
                f"given timeout={self.timeout:g})"
                + (f": it was still running {place}" if place else ""),
                "one call is one turn: pass timeout to select.select(), serve what "
                "it reported ready, then return; never loop inside select_round(), "
                "and never make a blocking call (every client socket must be "
                "non-blocking: step 2).",
            )
        if self.listener.fileno() == -1 and not self._stop.is_set():
            raise NotYet(
                "select_round() closed the listening socket it was given",
                "the listener belongs to the caller and serves every future client: "
                "close only client sockets (steps 3 and 4).",
            )
        if self.error is None:
            return
        judge_error(self.error, "select_round()")
        if isinstance(self.error, OSError) and self.error.errno in OUT_OF_DESCRIPTORS:
            raise NotYet(
                f"this process ran out of file descriptors (soft limit {fd_limit()}) "
                "while your loop accepted clients",
                "this is the machine's limit, not a mistake in your loop: restart the "
                "kernel, or raise the limit (`ulimit -n 4096` in the shell that starts "
                "JupyterLab), and check again.",
            )
        if isinstance(self.error, ConnectionError):
            raise NotYet(
                f"select_round() raised {describe_exception(self.error)} when a "
                "client reset its connection",
                "a ConnectionError from recv() or send() means the client is gone: "
                "catch it, close that socket and delete it from outbufs (and "
                "finished) at once (step 3); the other clients carry on.",
            )
        raise NotYet(
            f"select_round() raised {describe_exception(self.error)}",
            "read the error message; remember that a closed socket must also be "
            "removed from outbufs, or select() will be given a closed socket.",
        )

    def stop(self) -> bool:
        """End the loop and close every socket. Returns False if the thread would not end."""
        self._stop.set()
        self.runner.thread.join(1.0)
        if self.runner.thread.is_alive():
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
            self.runner.thread.join(1.0)
        if self.runner.thread.is_alive():  # still in the learner's code: the harness stops it
            stop_learner_code([self.runner.thread.ident], sockets=[self.listener, *self.outbufs])
            self.runner.thread.join(0.5)
        ended = not self.runner.thread.is_alive()
        for sock in list(self.outbufs):
            sock.close()
        self.listener.close()
        return ended


def big_echo(address, payload: bytes, timeout: float = 15.0, stall: float = 2.0) -> bytes:
    """Send ``payload`` while reading the echo; return what came back.

    Gives up after ``timeout`` seconds, or after ``stall`` seconds without a byte sent or
    received (lost bytes are never coming), or when the server closes
    (:func:`~nbio_helpers.clients.stream_echo`).
    """
    with socket.create_connection(address, timeout=5.0) as sock:
        return stream_echo(sock, payload, timeout=timeout, stall=stall, recv_size=1 << 20)[1]


@checker
def check_select_round(select_round):
    """Run the learner's ``select_round(listener, outbufs, finished, timeout)`` as an echo server.

    Passes if: a first echo works; 10 idle clients neither make the loop spin nor cost it
    CPU, and it returns once per timeout; replies come at once, not after a sleep; a client
    that does not read its replies delays nobody, and its reset is cleaned up; clients that
    close leave ``outbufs``; 100 concurrent clients are all echoed; 8 MiB comes back byte for
    byte through a small send buffer; a client that says it is done (``b''``) before reading
    still gets all its 4 MiB, then the end of the stream, while the loop sleeps.
    """
    if not callable(select_round):
        raise NotYet(
            f"expected a function, got {type(select_round).__name__}",
            "pass the function itself: check_select_round(select_round).",
        )
    loop = LearnerLoop(select_round).start()
    try:
        _first_echo(loop)
        _no_leak(loop, 1)
        _idle_rounds(loop)
        _no_leak(loop, 10)
        _prompt_replies(loop)
        _quiet_client(loop)
        _hundred_clients(loop)
        _big_payload(loop)
        _half_close(loop)
    finally:
        ended = loop.stop()
    if not ended:
        raise NotYet(
            "select_round() did not return after the checker stopped calling it",
            "pass timeout to select.select() so that every round ends.",
        )
    return (
        "your loop slept while clients were idle, answered at once, was not held up by a "
        "client that did not read, echoed 100 clients and 8 MiB byte for byte, finished "
        "sending after b'' before closing, and closed every finished connection"
    )


def _first_echo(loop: LearnerLoop) -> None:
    try:
        with connect(loop.address, timeout=3.0) as sock:
            sock.sendall(b"hello")
            got = _receive(sock, 5, 3.0, lambda: loop.error is not None or loop.stuck())
    except OSError as exc:
        raise _could_not_talk(loop, exc) from None
    loop.raise_if_failed()
    if got != b"HELLO":
        raise NotYet(
            f"a client sent b'hello' and got {got!r} back",
            "put the listener and every client socket in rlist; accept() when the "
            "listener is readable; recv() from a readable client, upper-case the "
            "data and append it to outbufs[sock]; send it when the socket is writable.",
        )


def _receive(sock: socket.socket, size: int, within: float, failed) -> bytes:
    """Read up to ``size`` bytes in short waits (to notice at once if the loop has crashed),
    for at most ``within`` seconds, until the server closes or ``failed()`` is true."""
    sock.settimeout(0.05)
    got, deadline = b"", time.monotonic() + within
    while len(got) < size and time.monotonic() < deadline and not failed():
        try:
            chunk = sock.recv(size - len(got))
        except TimeoutError:
            continue
        if not chunk:
            break
        got += chunk
    return got


def _could_not_talk(loop: LearnerLoop, exc: OSError) -> NotYet:
    """What to raise when a client's socket call failed: the loop's own failure if it has
    one, else that the client could not talk to it."""
    loop.raise_if_failed()
    return NotYet(
        f"a client could not talk to your server ({describe_exception(exc)})",
        "accept() when the listener is readable, and make the new socket non-blocking.",
    )


def _count(loop: LearnerLoop, window: float) -> tuple[int, float]:
    """The rounds the loop made and its CPU share (of one core) over ``window`` seconds."""
    r0, c0, t0 = loop.rounds, loop.cpu.total(), time.perf_counter()
    time.sleep(window)
    return loop.rounds - r0, (loop.cpu.total() - c0) / (time.perf_counter() - t0)


def _spins(rounds: int, cpu: float, what: str) -> NotYet:
    return NotYet(
        f"{what} your loop went round {rounds:,} times in {IDLE_WINDOW} s, using "
        f"about {cpu:.0%} of a core: it spins",
        "a loop that never sleeps has one of two causes: idle sockets in wlist (an "
        "idle socket is always writable: put a socket in wlist only while its "
        "outbufs entry holds bytes to send), or select() not given the timeout "
        "argument (pass timeout itself, not 0).",
    )


def _idle_rounds(loop: LearnerLoop) -> None:
    idle = [connect(loop.address, timeout=3.0) for _ in range(10)]
    try:
        if not wait_until(lambda: len(loop.outbufs) >= 10 or loop.error or loop.stuck(), 3.0):
            loop.raise_if_failed()
            raise NotYet(
                "10 clients connected but the loop did not accept them all in 3 s",
                "accept() whenever the listener is readable, and add the new socket "
                "to outbufs with an empty bytearray().",
            )
        rounds, cpu = _count(loop, IDLE_WINDOW)
        loop.raise_if_failed()
        if rounds > SPIN_ROUNDS:
            raise _spins(rounds, cpu, "with 10 idle clients")
        if rounds > EARLY_ROUNDS:
            raise NotYet(
                f"with 10 idle clients your loop went round {rounds} times in "
                f"{IDLE_WINDOW} s with timeout={ROUND_TIMEOUT:g}: it returns more "
                f"often than its timeout (select() would return about "
                f"{IDLE_WINDOW / ROUND_TIMEOUT:.0f} times)",
                "a short sleep and then trying every socket is polling, not select(): "
                "make one select.select(rlist, wlist, [], timeout) call per round, "
                "with the timeout you were given, and let it do the waiting.",
            )
        if cpu > IDLE_CPU:
            raise NotYet(
                f"with 10 idle clients your loop used about {cpu:.0%} of a core, "
                f"in {rounds} rounds in {IDLE_WINDOW} s: it keeps the CPU busy while "
                "it waits",
                "let select.select() do the waiting (the thread sleeps in the "
                "kernel); never wait in a loop of your own that checks the time or "
                "the sockets.",
            )
    finally:
        for sock in idle:
            sock.close()


def _prompt_replies(loop: LearnerLoop) -> None:
    """Time requests one at a time, with ``timeout`` raised to PROMPT_TIMEOUT."""
    loop.timeout = PROMPT_TIMEOUT
    delays, late = [], 0
    try:
        with connect(loop.address, timeout=3.0) as sock:
            if not wait_until(lambda: len(loop.outbufs) >= 1 or loop.error or loop.stuck(), 3.0):
                loop.raise_if_failed()
            for i in range(PROMPT_REQUESTS):
                time.sleep(random.uniform(0.0, 0.02))  # not in step with the loop's rounds
                message = b"ping %d" % i
                started = time.perf_counter()
                sock.sendall(message)
                got = b""
                while len(got) < len(message):
                    try:
                        chunk = sock.recv(len(message) - len(got))
                    except TimeoutError:
                        chunk = None
                    if not chunk:
                        loop.raise_if_failed()
                        raise NotYet(
                            f"a client sent {message!r} and got {got!r} back within 3 s",
                            "serve a readable client, then send its reply when "
                            "select() says its socket is writable.",
                        )
                    got += chunk
                delays.append(time.perf_counter() - started)
                if got != message.upper():
                    raise NotYet(
                        f"a client sent {message!r} and got {got!r} back",
                        "upper-case the data and append it to outbufs[sock].",
                    )
                if delays[-1] > PROMPT_REPLY:
                    late += 1
                    if late >= PROMPT_LATE:
                        break
    except OSError as exc:
        raise _could_not_talk(loop, exc) from None
    finally:
        loop.timeout = ROUND_TIMEOUT
    loop.raise_if_failed()
    if late >= PROMPT_LATE:
        raise NotYet(
            f"with timeout={PROMPT_TIMEOUT:g}, {late} of {len(delays)} replies came "
            f"more than {PROMPT_REPLY * 1e3:.0f} ms late (median "
            f"{statistics.median(delays) * 1e3:.0f} ms): your loop sleeps, then tries "
            "every socket",
            "sleeping out the timeout and then trying every socket is polling: "
            "select.select(rlist, wlist, [], timeout) returns as soon as one socket "
            "is ready, so call it (once per round) instead of sleeping.",
        )


def _small_window_client(address) -> socket.socket:
    """A connected client whose receive buffer is RCVBUF (set before connecting, so that the
    window TCP announces stays small): replies it does not read soon fill it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.settimeout(3.0)
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _quiet_client(loop: LearnerLoop) -> None:
    """A client floods without reading; another client must still be served at once. Then
    the flooder resets: it must leave outbufs."""
    quiet = _small_window_client(loop.address)
    quiet.setblocking(False)
    try:
        # Send until QUIET_PAYLOAD, or until the loop stops reading (the send stalls).
        sent, last = 0, time.monotonic()
        chunk = b"q" * 65536
        while sent < QUIET_PAYLOAD and time.monotonic() - last < 0.3 and not loop.stuck():
            try:
                sent += quiet.send(chunk)
                last = time.monotonic()
            except BlockingIOError:
                time.sleep(0.005)
            except OSError:
                break
        # Then it reads a little (room in the server's send buffer: writable again, with far
        # more pending than fits), and stops reading again.
        wait_until(
            lambda: loop.error or loop.stuck() or sum(map(len, loop.outbufs.values())) >= sent // 2,
            1.0,
        )
        read, deadline = 0, time.monotonic() + 0.5
        while read < 4 * RCVBUF and time.monotonic() < deadline:
            try:
                read += len(quiet.recv(65536))
            except BlockingIOError:
                time.sleep(0.005)
            except OSError:
                break
        time.sleep(0.05)
        try:
            with connect(loop.address, timeout=3.0) as other:
                other.sendall(b"are you there?")
                got = _receive(other, 14, 2.0, lambda: loop.error is not None)
        except OSError:
            got = b""
        if got != b"ARE YOU THERE?":
            if loop.error is None:
                place = loop.where()
                raise NotYet(
                    f"a client sent {sent / 1024:,.0f} KiB, read a little of its replies "
                    f"and then stopped reading; after that another client got {got!r} "
                    "back within 2 s: the quiet client held up your loop"
                    + (f" (it was running {place})" if place else ""),
                    "make every accepted socket non-blocking (step 2): a send() or "
                    "recv() on a blocking socket waits, and a client that does not "
                    "read never makes room for a blocking send().",
                )
            loop.raise_if_failed()
        loop.raise_if_failed()
    finally:
        close_with_reset(quiet)
    if not wait_until(lambda: not loop.outbufs or loop.error or loop.stuck(), 2.0):
        loop.raise_if_failed()
        raise NotYet(
            f"a client reset its connection with replies pending, and 2 s later "
            f"{len(loop.outbufs)} socket(s) were still in outbufs",
            "a ConnectionError from recv() or send() means the client is gone: close "
            "that socket and delete it from outbufs (and finished) at once (step 3).",
        )
    loop.raise_if_failed()
    if loop.finished:
        raise NotYet(
            "a client reset its connection, and its socket stayed in finished",
            "when you close a client, delete it from outbufs and from finished.",
        )


def _no_leak(loop: LearnerLoop, closed: int) -> None:
    if not wait_until(lambda: not loop.outbufs or loop.error or loop.stuck(), 2.0):
        loop.raise_if_failed()
        raise NotYet(
            f"{closed} client(s) closed, but {len(loop.outbufs)} socket(s) are still "
            "in outbufs: the connections leak (and select() keeps reporting them)",
            "recv() returning b'' with nothing left to send means the client is "
            "done: close that socket and delete it from outbufs.",
        )
    loop.raise_if_failed()


def _hundred_clients(loop: LearnerLoop) -> None:
    result = run_load(loop.address, clients=100, messages=5, size=64, timeout=10.0)
    loop.raise_if_failed()
    if not result.ok:
        first = result.errors[0] if result.errors else "some echoes were missing"
        raise NotYet(
            f"with 100 concurrent clients, {result.completed} of 500 echoes came back "
            f"right (first problem: {first})",
            "serve every socket select() reported, not only the first one.",
        )
    if not wait_until(lambda: not loop.outbufs or loop.error or loop.stuck(), 2.0):
        raise NotYet(
            f"{len(loop.outbufs)} of 100 finished clients are still in outbufs: "
            "the connections leak",
            "recv() returning b'' means the client is done: once nothing is left to "
            "send it, close it and delete it.",
        )


def _big_payload(loop: LearnerLoop) -> None:
    payload = bytes(range(97, 123)) * (BIG_PAYLOAD // 26) + b"x" * (BIG_PAYLOAD % 26)
    got = big_echo(loop.address, payload)
    loop.raise_if_failed()
    if len(got) < len(payload):
        raise NotYet(
            f"a client sent 8 MiB and only {len(got):,} of {len(payload):,} bytes came "
            "back: the rest was lost",
            "send() may take only part of the buffer: it returns how many bytes it "
            "took; delete just those (del outbufs[sock][:sent]) and keep the rest "
            "for the next round.",
        )
    if got != payload.upper():
        raise NotYet(
            "a client sent 8 MiB and got the right number of bytes, but not the "
            "right bytes (out of order or changed)",
            "append each reply at the end of outbufs[sock] and send from its start.",
        )


def _half_close(loop: LearnerLoop) -> None:
    """A client sends 4 MiB, says it is done (shutdown SHUT_WR), waits, then reads."""
    if not wait_until(lambda: not loop.outbufs or loop.error or loop.stuck(), 2.0):
        loop.raise_if_failed()
    payload = bytes(range(97, 123)) * (HALF_CLOSE_PAYLOAD // 26)
    sock = _small_window_client(loop.address)
    sock.settimeout(5.0)
    try:
        try:
            sock.sendall(payload)  # the server reads it all: its outbufs entry has no bound
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            loop.raise_if_failed()
            raise NotYet(
                f"a client sending 4 MiB without reading got {describe_exception(exc)}",
                "keep reading a client while its replies are pending; close it only "
                "once its buffer is empty.",
            ) from None
        # b'' reaches the loop: a right loop puts the client into finished
        wait_until(lambda: loop.finished or not loop.outbufs or loop.error or loop.stuck(), 2.0)
        rounds, cpu = _count(loop, IDLE_WINDOW)  # the client reads nothing meanwhile
        loop.raise_if_failed()
        got, ended = bytearray(), False
        sock.settimeout(0.1)
        deadline, last = time.monotonic() + 15.0, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < 2.0:
            try:
                chunk = sock.recv(1 << 20)
            except TimeoutError:
                if loop.error is not None or loop.stuck():
                    break
                continue
            except OSError:
                break
            if not chunk:
                ended = True
                break
            got += chunk
            last = time.monotonic()
    finally:
        sock.close()
    loop.raise_if_failed()
    expected = payload.upper()
    if len(got) < len(expected):
        raise NotYet(
            f"a client sent 4 MiB, then said it was done (b'' reached your loop) "
            f"before reading a byte; only {len(got):,} of {len(expected):,} bytes "
            "came back" + (", then the stream ended" if ended else ""),
            "b'' means the client will send no more, not that it reads no more: "
            "keep its socket, in finished, until its buffer is sent (step 3), then "
            "close it (step 4).",
        )
    if bytes(got[: len(expected)]) != expected or len(got) > len(expected):
        raise NotYet(
            "a client sent 4 MiB and said it was done; the bytes that came back "
            "were not its echo (out of order, changed or repeated)",
            "append each reply at the end of outbufs[sock] and send from its start.",
        )
    if rounds > SPIN_ROUNDS:
        raise NotYet(
            f"while a client that had sent b'' waited for its replies, your loop went "
            f"round {rounds:,} times in {IDLE_WINDOW} s (about {cpu:.0%} of a core): "
            "it spins",
            "a client that sent b'' stays readable for ever (recv() returns b'' at "
            "once, every time): leave the sockets of finished out of rlist.",
        )
    if not ended:
        raise NotYet(
            "a client sent 4 MiB and said it was done; every byte came back, but the "
            "stream never ended: your loop never closed its socket",
            "once the buffer of a client in finished is empty, close it and delete it "
            "from outbufs and from finished (step 4).",
        )
    if not wait_until(
        lambda: (not loop.outbufs and not loop.finished) or loop.error or loop.stuck(), 2.0
    ):
        loop.raise_if_failed()
        raise NotYet(
            f"a client that said it was done got all its replies, but 2 s later "
            f"outbufs held {len(loop.outbufs)} socket(s) and finished "
            f"{len(loop.finished)}",
            "when you close a client, delete it from outbufs and from finished.",
        )
    loop.raise_if_failed()


# ------------------------------------------------------------------------- predictions
QUESTIONS = {
    "idle_many_clients": (
        "c",
        "select() puts the thread to sleep in the kernel until a socket is ready. Idle clients "
        "make nothing ready, so however many there are, the thread is not even scheduled: "
        "about 0 of a core with 20 clients or with 300. (Each wake-up does cost more with 300 "
        "sockets, as the last question shows; but idle clients cause none.)",
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
        "is enough to burn a full core, and 100 cannot burn more than one: it is one thread. "
        "Each round costs more with 100 sockets, though: fewer rounds per second (the "
        "measurement below).",
    ),
}
"""Question id -> (right choice, explanation). The questions are in notebook 04."""


@checker
def check_prediction(question: str, prediction):
    """Check a predict-then-measure answer: ``prediction`` (a function returning "a", "b" or
    "c", or the letter itself)."""
    if question not in QUESTIONS:
        raise NotYet(f"there is no question {question!r}", f"use one of: {', '.join(QUESTIONS)}.")
    right, why = QUESTIONS[question]
    answer = answer_of(prediction)
    if not isinstance(answer, str) or answer.strip().lower().strip("()") not in ("a", "b", "c"):
        raise NotYet(
            f"the answer should be one of 'a', 'b' or 'c', not {answer!r}",
            "return a single letter, e.g. return 'a'.",
        )
    answer = answer.strip().lower().strip("()")
    if answer != right:
        raise NotYet(f"({answer}) is not what happens.", why)
    return f"({right}) — {why}"


__all__ = [
    "BIG_PAYLOAD",
    "EARLY_ROUNDS",
    "HALF_CLOSE_PAYLOAD",
    "IDLE_CPU",
    "IDLE_WINDOW",
    "PROMPT_LATE",
    "PROMPT_REPLY",
    "PROMPT_REQUESTS",
    "PROMPT_TIMEOUT",
    "QUESTIONS",
    "QUIET_PAYLOAD",
    "RCVBUF",
    "ROUND_TIMEOUT",
    "SNDBUF",
    "SPIN_ROUNDS",
    "STUCK_AFTER",
    "LearnerLoop",
    "big_echo",
    "check_prediction",
    "check_select_round",
]
