"""Checkers for notebook 05 (selectors, epoll, asyncio).

Usage in the notebook::

    from nbio_helpers.exercises.nb05 import SCENARIOS, check_model_choices, check_idle_timeout
    check_model_choices(answers)             # a function returning {scenario: model name}
    check_idle_timeout(IdleTimeoutServer)

Exercise 1, :func:`check_model_choices`: the right model for three scenarios.

* Rules the text states: one answer per scenario of :data:`SCENARIOS`, each one of the model
  names of :data:`MODEL_NAMES` (every model of ``MODELS``, notebook 06's ``tasks`` included;
  case and spaces do not matter); the best fit is accepted (two models for the game loop:
  polling, or ``select()`` with a timeout of 0 once per frame; two for the chat server), with
  the reason; any other choice is refused with what is wrong with it.
* Typical mistakes, each refused with its own hint (``SCENARIOS[...]["hints"]``: one for every
  model a scenario does not accept, tests/test_exercises_nb05.py checks it): the game loop given
  a blocking recv(), a reader thread (the GIL, a queue), a selector, asyncio or tasks (a loop
  of their own); the chat server given threads (memory and GIL hand-offs, not CPU while they
  sleep), select (FD_SETSIZE), polling, blocking, tasks (a teaching loop); the blocking driver
  given asyncio (``to_thread`` is threads again), tasks, or any single-threaded loop. Also: a
  name that is not a model (``"epoll"``), a missing scenario, not a dict, the stub.

Exercise 2, :func:`check_idle_timeout`: the selectors loop closing idle connections. The
learner's ``serve()`` runs as a real server; the checker gives it a selector of its own
(``server.selector_class``) that notes every ``select()`` timeout and every ``unregister()``.

* Rules the text states, each enforced: a connection on which no data came for more than
  ``idle_timeout`` is closed (not before, and at the latest twice ``idle_timeout`` after its
  last data); a connection that talks stays open; closing happens even when nothing else
  happens (the loop wakes up by itself: a ``select()`` timeout); while nobody talks the loop
  sleeps in ``sel.select()`` (no spinning: its CPU is measured; and no waiting elsewhere,
  such as ``time.sleep``: replies must come promptly); a closed connection leaves the
  selector first (``sel.unregister(conn.sock)``, then ``conn.close(...)``); the server goes
  on serving, and stops when asked; the selector comes from ``self.selector_class()``;
  ``__init__`` is kept.
* Typical mistakes, each refused with a hint that names it (tests/test_exercises_nb05.py):
  ``select()`` without a timeout; ``select(timeout=0)`` (spins: a core burnt while idle);
  ``time.sleep()`` in the loop (with ``select(timeout=0)``, or with a timeout: late
  replies); clocks looked at only when ``select()`` reported something; only the ready
  keys looked at; activity never noted (busy clients closed); closing too soon; a timeout
  so long that idle clients are closed late; never unregistering; closing before
  unregistering; ``while True:`` instead of ``while not self.stopping:`` (does not stop when
  asked); a ``serve()`` stuck before it serves anybody (no client answered: where it was
  stuck is named); no clock given at accept (AttributeError); another selector than
  ``self.selector_class()``; the ``__init__`` changed; the stub. Accepted: ``time.time()``
  instead of ``time.monotonic()``; any ``select()`` timeout up to ``idle_timeout``; a
  timeout computed from the earliest deadline (``None`` while no client is connected).
"""

from __future__ import annotations

import contextlib
import itertools
import selectors
import socket
import threading
import time
from typing import Any

from nbio_helpers.clients import connect, recv_exactly, request
from nbio_helpers.exercises import (
    NOT_IMPLEMENTED_HINT,
    NOT_IMPLEMENTED_MESSAGE,
    NotYet,
    answer_of,
    checker,
    describe_exception,
    judge_error,
    try_learner,
)
from nbio_helpers.exercises.harness import LearnerStopped, guarded, stop_learner_code, where
from nbio_helpers.models import MODELS, SelectorsServer
from nbio_helpers.server import ServerStopTimeout

MODEL_NAMES = tuple(MODELS)
"""The names exercise 1 accepts: every model of :data:`nbio_helpers.models.MODELS`, in order
(``tasks``, notebook 06's loop, included); every scenario has a hint for each wrong one."""

SCENARIOS: dict[str, dict[str, Any]] = {
    "game_loop": {
        "text": "A game redraws its screen 60 times a second in its main loop. Each frame it "
        "must take whatever its one server connection has sent, but never wait for it.",
        "accept": ("polling", "select"),
        "why": "the loop already wakes up 60 times a second: once per frame, a non-blocking "
        "recv() (polling), or select() with a timeout of 0 on the one socket, takes "
        "what has come without waiting; any wait would freeze the picture.",
        "hints": {
            "blocking": "a blocking recv() would freeze the game until the server sends.",
            "threads": "a reader thread works, but then the frame loop must take the data from "
            "it safely (a queue), and the thread takes Python's GIL from the game "
            "whenever data comes. One non-blocking call per frame does the same in "
            "the loop itself.",
            "selectors": "sel.select(0) once per frame works, but a selector is for many "
            "sockets: for one, it is select() with a timeout of 0 and more to set "
            "up. Choose polling or select.",
            "asyncio": "asyncio wants to own the main loop (asyncio.run()); the game already "
            "has one, and would have to run asyncio's a step at a time each frame.",
            "tasks": "the tasks model runs a loop of its own (notebook 06's Loop), as asyncio "
            "does: the game already has one, and would have to run that one a step "
            "at a time each frame.",
        },
    },
    "chat_server": {
        "text": "A chat server on Linux with 10,000 connected users, most of them silent "
        "most of the time.",
        "accept": ("selectors", "asyncio"),
        "why": "epoll waits on 10,000 sockets at a cost that depends on the ready ones only, "
        "and one thread serves them all (selectors, or asyncio on top of it).",
        "hints": {
            "blocking": "one client at a time: the other 9,999 would wait.",
            "threads": "10,000 threads can work, and a thread asleep in recv() costs no CPU. "
            "But each one holds a stack of its own (reserved address space, and the "
            "memory it touches) and the kernel's bookkeeping, and every message "
            "wakes a thread that must take Python's GIL from the others. One thread "
            "with epoll does the same work without either cost.",
            "polling": "asking 10,000 silent sockets again and again burns a core for nothing.",
            "select": "select() cannot watch descriptor numbers of 1024 or more (FD_SETSIZE), "
            "and every call costs time for every socket it watches.",
            "tasks": "the tasks model is this series' own teaching loop (notebook 06): it "
            "would wait in epoll as asyncio does, but a real server is built on what "
            "is maintained and tested by others: selectors, or asyncio.",
        },
    },
    "legacy_driver": {
        "text": "A small internal service: about 20 clients at a time, and every request calls "
        "a database library whose calls block and cannot be made non-blocking.",
        "accept": ("threads",),
        "why": "a blocking call stops whatever thread makes it: with a thread per client, one "
        "slow query stops only its own client, and 20 threads are cheap.",
        "hints": {
            "blocking": "one client at a time: a slow query would make the other 19 wait.",
            "polling": "the library's calls block: while one runs, the loop stops for everyone.",
            "select": "the library's calls block: while one runs, the loop stops for everyone.",
            "selectors": "the library's calls block: while one runs, the loop stops for everyone.",
            "asyncio": "a blocking call inside a coroutine stops the whole event loop (section 4 "
            "measured it). The way out is await asyncio.to_thread(query, ...), which "
            "runs each query in a thread of a pool: threads again, plus an event "
            "loop, and the pool has min(32, CPUs + 4) threads, so on a small machine "
            "some of 20 slow queries wait for a free one. For 20 clients, threads "
            "alone are simpler.",
            "tasks": "a blocking call inside a task stops the whole loop, as in asyncio: "
            "every other client waits while one query runs.",
        },
    },
}
"""The scenarios of the first exercise: text, accepted models, why, and a hint per wrong model."""


@checker
def check_model_choices(answers):
    """Check the learner's ``{scenario: model name}`` answers (or a function returning
    them); explain each one."""
    answers = answer_of(answers)
    if not isinstance(answers, dict):
        raise NotYet(
            f"expected a dict, got {type(answers).__name__}",
            "answers = {'game_loop': '...', 'chat_server': '...', 'legacy_driver': '...'}",
        )
    if (
        any(
            value is NotImplemented or value is Ellipsis or value is None
            for value in answers.values()
        )
        or not answers
    ):
        raise NotYet(NOT_IMPLEMENTED_MESSAGE, NOT_IMPLEMENTED_HINT)
    missing = [key for key in SCENARIOS if key not in answers]
    if missing:
        raise NotYet(
            f"no answer for {', '.join(missing)}",
            f"give one model name for each of: {', '.join(SCENARIOS)}.",
        )
    explanations = []
    for key, scenario in SCENARIOS.items():
        answer = str(answers[key]).strip().lower()
        if answer not in MODEL_NAMES:
            raise NotYet(
                f"{answers[key]!r} (for {key}) is not a model name",
                f"choose one of: {', '.join(MODEL_NAMES)}.",
            )
        if answer not in scenario["accept"]:
            raise NotYet(
                f"{answer!r} is not the best fit for {key}",
                scenario["hints"].get(answer, "think about what blocks and what waits."),
            )
        explanations.append(f"\n  - {key}: {answer}, because {scenario['why']}")
    return "the right model for every scenario:" + "".join(explanations)


# ----------------------------------------------------------------------- idle timeout
IDLE_TIMEOUT = 0.25
"""The ``idle_timeout`` (seconds) the checker gives the learner's server."""

LATEST = 2 * IDLE_TIMEOUT
"""An idle connection must be closed at the latest this long after its last data."""

GRACE = 0.15
"""Scheduling delays the checker forgives beyond :data:`LATEST` (a busy machine)."""

WAIT_FOR_CLOSE = IDLE_TIMEOUT + 1.5
"""How long the checker waits to see whether an idle connection is closed at all."""

TOO_SOON = 0.8 * IDLE_TIMEOUT
"""Closed sooner than this after its last data: closed too soon."""

CHATTY_EVERY = 0.05
"""The busy client sends a message this often (a fifth of ``IDLE_TIMEOUT``)."""

LATE_REPLY = 0.025
"""A median round trip above this (seconds) means the loop sleeps somewhere: the echo of a
loop that waits in select() comes back within a millisecond or two, even on a busy machine."""

SPIN_CPU = 0.3
"""Above this share of a core while nobody talks, the loop spins (a loop that sleeps in
select() uses about 0.01; one that spins, a whole core on a quiet machine)."""

SPIN_RATE = 2000
"""More ``select()`` calls a second than this while nobody talks: the loop spins."""

SPIN_ZERO_TIMEOUT_HINT = (
    "select(timeout=0) returns at once, so the loop goes round and round: give "
    "select() a timeout, such as idle_timeout / 4, and it sleeps until data comes or "
    "the timeout passes."
)

ANSWER_WITHIN = 3.0
"""Seconds the first client waits for its echo."""

STOP_WITHIN = 1.0
"""Seconds the learner's server has to stop after ``stop()`` before the harness stops it."""

_servers = itertools.count(1)


class _SelectLog:
    """What the learner's loop asked of its selector, counted from :meth:`reset` on."""

    def __init__(self, server):
        self.server = server
        self.lock = threading.Lock()
        self.total = 0  # select() calls since the server started
        self.unregistered_closed = 0  # unregister() of a socket already closed
        self.server_selectors: list = []  # every selector the loop made
        self.waiting: tuple | None = None  # (timeout, clients) of the select() running now
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.started = time.monotonic()
            self.calls = 0  # select() calls while a client was registered
            self.no_timeout = 0  # ... of which with timeout None
            self.zero_timeout = 0  # ... of which with timeout 0 (or less)
            self.waited = 0  # ... of which with a timeout > 0

    def select_called(self, timeout, clients: int) -> None:
        with self.lock:
            self.total += 1
            self.waiting = (timeout, clients)
            if not clients:
                return
            self.calls += 1
            if timeout is None:
                self.no_timeout += 1
            elif timeout <= 0:
                self.zero_timeout += 1
            else:
                self.waited += 1

    def select_returned(self) -> None:
        with self.lock:
            self.waiting = None

    def blocked_without_timeout(self) -> bool:
        """Is the loop in a select() without timeout now, with a client registered?"""
        with self.lock:
            return self.waiting is not None and self.waiting[0] is None and self.waiting[1] > 0

    def rate(self) -> float:
        """``select()`` calls per second with a client registered, since :meth:`reset`."""
        with self.lock:
            return self.calls / max(1e-3, time.monotonic() - self.started)


def _watched_selector_class(log: _SelectLog):
    """A DefaultSelector that reports to ``log``; the learner gets it as selector_class."""
    server = log.server

    class CheckersSelector(selectors.DefaultSelector):
        def __init__(self):
            super().__init__()
            log.server_selectors.append(self)

        def select(self, timeout=None):
            clients = sum(
                1
                for key in self.get_map().values()
                if key.fileobj is not server.listener and key.fileobj is not server.waker
            )
            log.select_called(timeout, clients)
            try:
                return super().select(timeout)
            finally:
                log.select_returned()

        def unregister(self, fileobj):
            if isinstance(fileobj, socket.socket) and fileobj.fileno() == -1:
                with log.lock:
                    log.unregistered_closed += 1
            return super().unregister(fileobj)

    return CheckersSelector


def closed_by_server(
    sock: socket.socket, within: float, server, since: float | None = None
) -> float | None:
    """Seconds from ``since`` (a ``time.monotonic()`` value: when ``sock`` connected; default
    now) until the server closed ``sock`` (EOF or reset), or None if it did not within
    ``within`` seconds of ``since`` (or if the server's loop ended: no point waiting)."""
    start = time.monotonic() if since is None else since
    sock.settimeout(0.02)  # short waits, to notice at once if the loop has died
    while time.monotonic() - start < within and server.running:
        try:
            data = sock.recv(1024)
        except TimeoutError:
            continue
        except ConnectionError:
            data = b""
        return time.monotonic() - start if not data else None
    return None


def _chatty_client(address, every: float, seconds: float, outcome: dict) -> None:
    """Send a message every ``every`` seconds for ``seconds``; check every echo, time each
    round trip (``outcome["round_trips"]``), and note when it was cut off."""
    outcome["round_trips"] = []
    start = time.monotonic()
    try:
        with connect(address, timeout=3.0) as sock:
            start = time.monotonic()
            deadline = start + seconds
            n = 0
            while time.monotonic() < deadline:
                message = b"still here %d" % n
                sent = time.perf_counter()
                sock.sendall(message)
                if recv_exactly(sock, len(message), timeout=2.0) != message.upper():
                    outcome["error"] = "an echo came back wrong"
                    return
                outcome["round_trips"].append(time.perf_counter() - sent)
                n += 1
                time.sleep(every)
            outcome["echoes"] = n
    except (OSError, TimeoutError, ConnectionError) as exc:
        outcome["error"] = describe_exception(exc)
        outcome["cut_after"] = time.monotonic() - start


@checker
def check_idle_timeout(server_class):
    """Run ``server_class(idle_timeout=IDLE_TIMEOUT)`` against idle and busy clients.

    Passes if (the module's docstring lists every rule and mistake): the server answers; a
    silent client beside a busy one is closed after ``IDLE_TIMEOUT`` seconds (not before,
    and by :data:`LATEST`), the busy one stays, each echo prompt; a silent client alone is
    closed the same way, while the loop sleeps in ``select()`` (its CPU and its calls are
    measured); every closed connection was unregistered first; the server goes on serving
    and stops when asked. Verdict within about 4 s (30 s whatever the learner's code does).
    """
    if not isinstance(server_class, type):
        raise NotYet(
            f"expected a class, got {type(server_class).__name__}",
            "pass the class itself: check_idle_timeout(IdleTimeoutServer).",
        )
    # The learner's __init__ (and start, if overridden) run under the harness: bounded.
    registry_name = f"check-idle-{next(_servers)}"
    made = try_learner(
        lambda: server_class(idle_timeout=IDLE_TIMEOUT, name=registry_name),
        limit=3.0,
        name=server_class.__name__,
    )
    if made.error is not None:
        if isinstance(made.error, TypeError):
            raise NotYet(
                f"{server_class.__name__}(idle_timeout=...) failed: "
                f"{describe_exception(made.error)}",
                "keep the __init__ that takes idle_timeout.",
            )
        raise NotYet(
            f"{server_class.__name__}(idle_timeout=...) raised {describe_exception(made.error)}",
            "keep the __init__ as it was given: it only stores idle_timeout.",
        )
    server = made.value
    if not isinstance(server, SelectorsServer):
        raise NotYet(
            f"{server_class.__name__} is not a SelectorsServer",
            "keep the class line as given: class IdleTimeoutServer(SelectorsServer).",
        )
    log = _SelectLog(server)
    server.selector_class = _watched_selector_class(log)
    # The learner's serve() runs in the server's thread: guarded, so that it can be timed,
    # located and stopped; the thread is renamed learner-..., as it runs learner code.
    server.serve = guarded(server.serve, name="serve")  # type: ignore[method-assign]
    started = try_learner(server.start, limit=3.0, name="start")
    if started.error is not None:
        _stop_quietly(server)
        raise NotYet(
            f"starting the server raised {describe_exception(started.error)}",
            "keep the __init__ that calls super().__init__(*args, **kwargs).",
        )
    if server.thread is not None:
        server.thread.name = "learner-" + server.thread.name.removeprefix("nbio-")
    try:
        _check_alive(server)
        _first_echo(server, log)
        _idle_beside_busy(server, log)
        _idle_alone(server, log)
        _still_serving(server, log)
    except BaseException:  # a verdict already, or the Stop button: it must go on up
        _stop_quietly(server)
        raise
    _stop_server(server)
    return (
        f"an idle connection was closed once idle_timeout={IDLE_TIMEOUT:g} had passed, a busy "
        "one beside it kept going, your loop slept in select() while nobody talked, and "
        "the server went on serving"
    )


def _stop_quietly(server) -> None:
    with contextlib.suppress(Exception, LearnerStopped):
        server.stop(timeout=STOP_WITHIN)
    if server.running:
        stop_learner_code([server.thread.ident])


def _stop_server(server) -> None:
    """Stop the learner's server; fail if its loop died, or did not stop when asked."""
    place = where(server.thread) if server.thread is not None else None
    try:
        server.stop(timeout=STOP_WITHIN)
    except ServerStopTimeout:
        stop_learner_code([server.thread.ident])
        raise NotYet(
            f"your server did not stop within {STOP_WITHIN:g} s of stop()"
            + (f": serve() was still running {place}" if place else ""),
            "loop `while not self.stopping:`, give sel.select() a timeout, and "
            "never wait anywhere else (a blocking recv(), time.sleep) in serve().",
        ) from None
    except LearnerStopped:
        pass
    except Exception as exc:  # the learner's loop died
        _raise_for_loop(exc)


def _raise_for_loop(exc: BaseException):
    judge_error(exc, "serve()", prefix="your loop died: ")
    if isinstance(exc, KeyError) and "registered" in str(exc):
        raise NotYet(
            "your loop crashed: a new connection's descriptor was still registered in "
            "the selector (KeyError)",
            "unregister a connection from the selector before you close it "
            "(sel.unregister(conn.sock), then conn.close(...)).",
        )
    if isinstance(exc, AttributeError) and "last_active" in str(exc):
        raise NotYet(
            f"your loop crashed: {describe_exception(exc)}",
            "give every connection its clock when you accept it "
            "(conn.last_active = time.monotonic(), before sel.register(...)), so "
            "that the check of the clocks finds one on every connection.",
        )
    raise NotYet(
        f"your loop crashed: {describe_exception(exc)}",
        "read the error; the loop must survive closing connections.",
    )


def _check_alive(server) -> None:
    if not server.running:
        error = server.error
        server.error = None  # reported here; stop() need not raise it again
        if error is not None and not isinstance(error, LearnerStopped):
            _raise_for_loop(error)
        raise NotYet(
            "your server's loop ended by itself",
            "loop `while not self.stopping:` like the selectors server does.",
        )


def _first_echo(server, log: _SelectLog) -> None:
    """A first client gets its echo: the loop runs, and waits in the checker's selector."""
    got, closed_after = b"", None
    try:
        with connect(server.address, timeout=ANSWER_WITHIN) as sock:
            start = time.monotonic()
            sock.sendall(b"hello")
            sock.settimeout(0.02)  # short waits, to notice at once if the loop died
            while len(got) < 5 and server.running and time.monotonic() - start < ANSWER_WITHIN:
                try:
                    chunk = sock.recv(5 - len(got))
                except TimeoutError:
                    continue
                except ConnectionError:
                    chunk = b""
                if not chunk:
                    closed_after = time.monotonic() - start
                    break
                got += chunk
    except OSError:
        pass
    _check_alive(server)
    if closed_after is not None and not got:
        raise NotYet(
            f"your server closed a new client {closed_after:.2f} s after it connected, "
            "before it could answer it",
            "close a connection only when now - its last activity > idle_timeout.",
        )
    if len(got) < 5:
        place = where(server.thread) if server.thread is not None else None
        raise NotYet(
            f"your server did not answer a client within {ANSWER_WITHIN:g} s"
            + (f": serve() was still running {place}" if place else ""),
            "serve() is the loop itself: register the listener and the waker, then "
            "`while not self.stopping:` wait in sel.select(timeout=...) and serve "
            "what it reports, as SelectorsServer.serve does.",
        )
    if got != b"HELLO":
        raise NotYet(
            f"a client sent b'hello' and got {got!r} back",
            "serve a ready connection with self.serve_connection(sel, key, mask).",
        )
    if log.total == 0:
        raise NotYet(
            "your loop answered, but not through the server's selector_class",
            "create the selector with `with self.selector_class() as sel:`, as "
            "SelectorsServer.serve does (the checker gives your server a selector "
            "that notes how long each select() may wait).",
        )


def _spins_on_zero_timeouts(calls: int, zero: int, rate: float, cpu: float) -> bool:
    """The loop called only ``select(timeout=0)``, and went round fast or used the CPU."""
    return bool(calls) and zero == calls and (rate > SPIN_RATE or cpu > SPIN_CPU)


def _late_close(after: float, who: str) -> NotYet:
    return NotYet(
        f"{who} was closed {after:.2f} s after its last data: later than twice "
        f"idle_timeout ({LATEST:g} s)",
        "select()'s timeout decides how late the loop looks at the clocks: make it "
        "no longer than idle_timeout (a quarter of it is a good choice).",
    )


def _idle_beside_busy(server, log: _SelectLog) -> None:
    """A silent client next to one that talks every CHATTY_EVERY s: only the silent one goes."""
    outcome: dict = {}
    seconds = LATEST + GRACE  # the silent one is closed meanwhile; this one must outlive it
    chatty = threading.Thread(
        target=_chatty_client,
        args=(server.address, CHATTY_EVERY, seconds, outcome),
        name="check-idle-chatty",
        daemon=True,
    )
    with connect(server.address, timeout=3.0) as idle:
        connected = time.monotonic()
        log.reset()
        c0, t0 = server.cpu.total(), time.perf_counter()
        chatty.start()
        after = closed_by_server(idle, WAIT_FOR_CLOSE, server, since=connected)
        chatty.join(seconds + 5)
        cpu = (server.cpu.total() - c0) / (time.perf_counter() - t0)
        rate = log.rate()
        with log.lock:
            calls, zero = log.calls, log.zero_timeout
    _check_alive(server)
    if after is not None and after < TOO_SOON:
        raise NotYet(
            f"an idle client was closed {after:.2f} s after it connected, sooner "
            f"than idle_timeout={IDLE_TIMEOUT:g} s",
            "close a connection only when now - its last activity > idle_timeout.",
        )
    if "error" in outcome or chatty.is_alive():
        cut = outcome.get("cut_after")
        if cut is not None and cut < TOO_SOON:
            raise NotYet(
                f"a client that talked every {CHATTY_EVERY:g} s was cut off "
                f"{cut:.2f} s after it connected, sooner than idle_timeout",
                "close a connection only when now - its last activity > idle_timeout.",
            )
        if _spins_on_zero_timeouts(calls, zero, rate, cpu):
            # As with late echoes: a spinning loop that keeps the GIL from the client
            # thread leaves it silent for longer than idle_timeout. The spin is the cause.
            raise NotYet(
                f"a client that talked every {CHATTY_EVERY:g} s was cut off "
                f"({outcome.get('error', 'no reply')}) while your loop called only "
                f"select(timeout=0), {rate:,.0f} times a second, and used {cpu:.0%} of a "
                "core: it spins",
                SPIN_ZERO_TIMEOUT_HINT,
            )
        raise NotYet(
            f"a client that talked every {CHATTY_EVERY:g} s was cut off "
            f"({outcome.get('error', 'no reply')})",
            "a connection is idle only if nothing came for idle_timeout seconds: "
            "note the time of the last activity each time data arrives "
            "(e.g. key.data.last_active = time.monotonic()).",
        )
    if after is None:
        raise NotYet(
            "with a busy client connected, an idle one beside it was never closed",
            "an idle socket is never in select()'s answer: after each select(), look "
            "at the clock of every registered connection (sel.get_map()), not only "
            "the ready ones.",
        )
    if after > LATEST + GRACE:
        raise _late_close(after, "an idle client beside a busy one")
    trips = sorted(outcome["round_trips"])
    median = trips[len(trips) // 2]
    if median > LATE_REPLY and _spins_on_zero_timeouts(calls, zero, rate, cpu):
        # A spinning loop starves the client threads of the GIL on a loaded machine: its
        # echoes come back late too, but the spin is the cause to name.
        raise NotYet(
            f"the busy client's echoes came back late ({median * 1e3:.0f} ms in the middle) "
            f"while your loop called only select(timeout=0), {rate:,.0f} times a second, "
            f"and used {cpu:.0%} of a core: it spins",
            SPIN_ZERO_TIMEOUT_HINT,
        )
    if median > LATE_REPLY:
        raise NotYet(
            f"the busy client's echoes came back late: {median * 1e3:.0f} ms in the "
            "middle (median) of its round trips",
            "do not sleep in the loop (time.sleep): wait in sel.select() with a "
            "timeout instead, so that the loop wakes up as soon as data comes.",
        )
    _check_unregistered(log)


def _idle_alone(server, log: _SelectLog) -> None:
    """A silent client, alone: closed in time, while the loop sleeps in select()."""
    with connect(server.address, timeout=3.0) as idle:
        connected = time.monotonic()  # "closed after": counted from here, not from
        time.sleep(0.05)  # after this pause (accepted and registered by now)
        log.reset()
        c0, t0 = server.cpu.total(), time.perf_counter()
        after = closed_by_server(idle, WAIT_FOR_CLOSE, server, since=connected)
        cpu = (server.cpu.total() - c0) / (time.perf_counter() - t0)
        rate = log.rate()
        with log.lock:
            calls, no_timeout, zero = log.calls, log.no_timeout, log.zero_timeout
        no_timeout += log.blocked_without_timeout()
    _check_alive(server)
    if calls and zero == calls:
        if _spins_on_zero_timeouts(calls, zero, rate, cpu):
            raise NotYet(
                f"while its client was silent your loop called select(timeout=0) "
                f"{rate:,.0f} times a second and used {cpu:.0%} of a core: it spins",
                SPIN_ZERO_TIMEOUT_HINT,
            )
        raise NotYet(
            "while its client was silent your loop called only select(timeout=0), "
            "and waited somewhere else",
            "do not sleep in the loop (time.sleep): wait in sel.select() with a "
            "timeout, such as idle_timeout / 4, so that the loop wakes up as soon as "
            "data comes, and otherwise when it is time to look at the clocks.",
        )
    if rate > SPIN_RATE or cpu > SPIN_CPU:
        raise NotYet(
            f"while its client was silent your server used {cpu:.0%} of a core "
            f"({rate:,.0f} select() calls a second): it spins",
            "while nobody talks, the loop must sleep in sel.select(): give it a "
            "timeout, such as idle_timeout / 4, and do nothing else in a loop of "
            "its own.",
        )
    if after is not None and after < TOO_SOON:
        raise NotYet(
            f"an idle client was closed {after:.2f} s after it connected, sooner "
            f"than idle_timeout={IDLE_TIMEOUT:g} s",
            "close a connection only when now - its last activity > idle_timeout.",
        )
    if after is None:
        if no_timeout:
            raise NotYet(
                f"a client that sent nothing was still connected after "
                f"{WAIT_FOR_CLOSE:g} s (idle_timeout={IDLE_TIMEOUT:g}): your loop "
                "called select() without a timeout",
                "when nobody talks, sel.select() without a timeout sleeps forever, "
                "and the loop never looks at the clocks: give select() a timeout.",
            )
        raise NotYet(
            f"a client that sent nothing, alone, was still connected after "
            f"{WAIT_FOR_CLOSE:g} s (idle_timeout={IDLE_TIMEOUT:g}), although "
            "select() timed out again and again",
            "your loop looks at the clocks only when select() reported something: "
            "after every select(), also one that returned nothing because its "
            "timeout passed, look at the clock of every registered connection.",
        )
    if after > LATEST + GRACE:
        raise _late_close(after, "an idle client")
    _check_unregistered(log)


def _check_unregistered(log: _SelectLog) -> None:
    """Every connection the loop closed has left the selector, and left it before closing."""
    time.sleep(0.02)  # a loop that unregisters late has done it by now
    with log.lock:
        late = log.unregistered_closed
    stale = sum(
        1
        for key in _registered(log)
        if isinstance(key.fileobj, socket.socket) and key.fileobj.fileno() == -1
    )
    if stale:
        raise NotYet(
            "a connection your loop closed is still registered in the selector",
            "a closed socket must leave the selector: sel.unregister(conn.sock), "
            "then conn.close(...).",
        )
    if late:
        raise NotYet(
            "your loop closed a connection before it unregistered it",
            'unregister first, then close (section 1, "Unregister, then close"): '
            "sel.unregister(conn.sock), then conn.close(...).",
        )


def _registered(log: _SelectLog) -> list:
    """The keys registered now in every open selector of the learner's loop (read from the
    checker's thread while the loop may change them: retried if it did meanwhile)."""
    for _ in range(20):
        try:
            return [
                key
                for sel in list(log.server_selectors)
                if (keys := sel.get_map()) is not None
                for key in list(keys.values())
            ]
        except RuntimeError:  # the map changed while being read
            time.sleep(0.005)
    return []


def _still_serving(server, log: _SelectLog) -> None:
    try:
        reply = request(server.address, b"are you there?", timeout=3.0)
    except (OSError, TimeoutError, ConnectionError) as exc:
        _check_alive(server)
        raise NotYet(
            f"after closing idle clients, a new client got no echo ({describe_exception(exc)})",
            "the loop must go on serving after it closes a connection.",
        ) from None
    if reply != b"ARE YOU THERE?":
        raise NotYet(f"a new client got {reply!r} back", "keep the echo as it was.")


__all__ = [
    "ANSWER_WITHIN",
    "CHATTY_EVERY",
    "GRACE",
    "IDLE_TIMEOUT",
    "LATEST",
    "LATE_REPLY",
    "MODEL_NAMES",
    "SCENARIOS",
    "SPIN_CPU",
    "SPIN_RATE",
    "STOP_WITHIN",
    "TOO_SOON",
    "WAIT_FOR_CLOSE",
    "check_idle_timeout",
    "check_model_choices",
    "closed_by_server",
]
