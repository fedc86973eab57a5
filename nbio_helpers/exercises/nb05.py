"""Checkers for notebook 05 (selectors, epoll, asyncio).

* :func:`check_model_choices` — pick the right model for three scenarios; every answer is
  checked and explained.
* :func:`check_idle_timeout` — the learner adds a per-connection idle timeout to the
  selectors loop (a subclass of :class:`~nbio_helpers.models.SelectorsServer` taking
  ``idle_timeout=``); the checker runs it against real idle and active clients.

Usage in the notebook::

    from nbio_helpers.exercises.nb05 import SCENARIOS, check_model_choices, check_idle_timeout
    check_model_choices({"game_loop": "...", "chat_server": "...", "legacy_driver": "..."})
    check_idle_timeout(IdleTimeoutServer)
"""
from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time

from ..clients import connect, recv_exactly, request
from ..models import SelectorsServer
from ..server import ServerStopTimeout
from . import (NOT_IMPLEMENTED_HINT, NOT_IMPLEMENTED_MESSAGE, LearnerBaseException,
               LearnerStopped, NotYet, answer_of, base_exception_failure, checker,
               describe_exception, guarded, stop_learner_code, try_learner, where)

MODEL_NAMES = ("blocking", "threads", "polling", "select", "selectors", "asyncio")

SCENARIOS = {
    "game_loop": {
        "text": "A game redraws its screen 60 times a second in its main loop. Each frame it "
                "must take whatever its one server connection has sent, but never wait for it.",
        "accept": ("polling",),
        "why": "the loop already wakes up 60 times a second: one non-blocking recv() per frame "
               "(polling) costs nothing extra, and any wait would freeze the picture.",
        "hints": {
            "blocking": "a blocking recv() would freeze the game until the server sends.",
            "threads": "a thread would work, but the loop already runs every frame: one "
                       "non-blocking recv() there is simpler.",
            "select": "with one socket and a loop that runs anyway, asking the kernel first "
                      "adds nothing: just try recv() once per frame.",
            "selectors": "with one socket and a loop that runs anyway, asking the kernel first "
                         "adds nothing: just try recv() once per frame.",
            "asyncio": "the game has its own loop already; a second loop would have to share it.",
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
            "threads": "10,000 threads, nearly all asleep, each with its own stack: memory and "
                       "scheduling for nothing.",
            "polling": "asking 10,000 silent sockets again and again burns a core for nothing.",
            "select": "select() cannot watch descriptors beyond FD_SETSIZE (1024), and its cost "
                      "grows with the number of sockets.",
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
            "asyncio": "a blocking call inside a coroutine stops the whole event loop.",
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
        raise NotYet(f"expected a dict, got {type(answers).__name__}",
                     "answers = {'game_loop': '...', 'chat_server': '...', "
                     "'legacy_driver': '...'}")
    if any(value is NotImplemented or value is Ellipsis or value is None
           for value in answers.values()) or not answers:
        raise NotYet(NOT_IMPLEMENTED_MESSAGE, NOT_IMPLEMENTED_HINT)
    missing = [key for key in SCENARIOS if key not in answers]
    if missing:
        raise NotYet(f"no answer for {', '.join(missing)}",
                     f"give one model name for each of: {', '.join(SCENARIOS)}.")
    explanations = []
    for key, scenario in SCENARIOS.items():
        answer = str(answers[key]).strip().lower()
        if answer not in MODEL_NAMES:
            raise NotYet(f"{answers[key]!r} (for {key}) is not a model name",
                         f"choose one of: {', '.join(MODEL_NAMES)}.")
        if answer not in scenario["accept"]:
            raise NotYet(f"{answer!r} is not the best fit for {key}",
                         scenario["hints"].get(answer, "think about what blocks and what waits."))
        explanations.append(f"\n  - {key}: {answer}, because {scenario['why']}")
    return "the right model for every scenario:" + "".join(explanations)


# ----------------------------------------------------------------------- idle timeout
IDLE_TIMEOUT = 0.25
"""The ``idle_timeout`` (seconds) the checker gives the learner's server."""

SLACK = 1.5
"""How much later than ``IDLE_TIMEOUT`` an idle connection may be closed."""

STOP_WITHIN = 1.0
"""Seconds the learner's server has to stop after ``stop()`` before the harness stops it."""

_servers = itertools.count(1)


def _closed_by_server(sock: socket.socket, within: float, server) -> float | None:
    """Seconds until the server closed ``sock`` (EOF or reset), or None if it did not within
    ``within`` seconds (or if the server's loop ended: then there is no point waiting)."""
    start = time.monotonic()
    sock.settimeout(0.05)   # short waits, to notice at once if the loop has died
    while time.monotonic() - start < within and server.running:
        try:
            data = sock.recv(1024)
        except socket.timeout:
            continue
        except ConnectionError:
            data = b""
        return time.monotonic() - start if not data else None
    return None


def _chatty_client(address, every: float, seconds: float, outcome: dict) -> None:
    """Send a message every ``every`` seconds for ``seconds``; check every echo."""
    try:
        with connect(address, timeout=3.0) as sock:
            outcome["connected"] = True
            deadline = time.monotonic() + seconds
            n = 0
            while time.monotonic() < deadline:
                message = b"still here %d" % n
                sock.sendall(message)
                if recv_exactly(sock, len(message), timeout=2.0) != message.upper():
                    outcome["error"] = "an echo came back wrong"
                    return
                n += 1
                time.sleep(every)
            outcome["echoes"] = n
    except (OSError, TimeoutError, ConnectionError) as exc:
        outcome["error"] = describe_exception(exc)


@checker
def check_idle_timeout(server_class):
    """Run ``server_class(idle_timeout=IDLE_TIMEOUT)`` against idle and active clients.

    Passes if: an idle client, alone, is closed after about ``IDLE_TIMEOUT`` seconds (not
    before); a client that talks every 0.05 s stays connected for twice the timeout, every
    echo right, while an idle one beside it is closed; the server is still serving afterwards
    and stops cleanly.
    """
    if not isinstance(server_class, type):
        raise NotYet(f"expected a class, got {type(server_class).__name__}",
                     "pass the class itself: check_idle_timeout(IdleTimeoutServer).")
    # The learner's __init__ (and start, if overridden) run under the harness: bounded.
    registry_name = f"check-idle-{next(_servers)}"
    made = try_learner(lambda: server_class(idle_timeout=IDLE_TIMEOUT, name=registry_name),
                       limit=3.0, name=server_class.__name__)
    if made.error is not None:
        if isinstance(made.error, TypeError):
            raise NotYet(f"{server_class.__name__}(idle_timeout=...) failed: "
                         f"{describe_exception(made.error)}",
                         "keep the __init__ that takes idle_timeout.")
        raise NotYet(f"{server_class.__name__}(idle_timeout=...) raised "
                     f"{describe_exception(made.error)}",
                     "keep the __init__ as it was given: it only stores idle_timeout.")
    server = made.value
    if not isinstance(server, SelectorsServer):
        raise NotYet(f"{server_class.__name__} is not a SelectorsServer",
                     "keep the class line as given: class IdleTimeoutServer(SelectorsServer).")
    # The learner's serve() runs in the server's thread: guarded, so that it can be timed,
    # located and stopped; the thread is renamed learner-..., as it runs learner code.
    server.serve = guarded(server.serve, name="serve")
    started = try_learner(server.start, limit=3.0, name="start")
    if started.error is not None:
        _stop_quietly(server)
        raise NotYet(f"starting the server raised {describe_exception(started.error)}",
                     "keep the __init__ that calls super().__init__(*args, **kwargs).")
    if server._thread is not None:
        server._thread.name = "learner-" + server._thread.name.removeprefix("nbio-")
    try:
        _check_alive(server)
        _idle_alone(server)
        _idle_beside_active(server)
        _still_serving(server)
    except BaseException:      # a verdict already, or the Stop button: it must go on up
        _stop_quietly(server)
        raise
    _stop_server(server)
    return (f"an idle connection was closed once idle_timeout={IDLE_TIMEOUT:g} had passed, a busy "
            "one beside it kept going, and the server went on serving")


def _stop_quietly(server) -> None:
    with contextlib.suppress(Exception, LearnerStopped):
        server.stop(timeout=STOP_WITHIN)
    if server.running:
        stop_learner_code([server._thread.ident])


def _stop_server(server) -> None:
    """Stop the learner's server; fail if its loop died, or did not stop when asked."""
    place = where(server._thread) if server._thread is not None else None
    try:
        server.stop(timeout=STOP_WITHIN)
    except ServerStopTimeout:
        stop_learner_code([server._thread.ident])
        raise NotYet(f"your server did not stop within {STOP_WITHIN:g} s of stop()"
                     + (f": serve() was still running {place}" if place else ""),
                     "loop `while not self.stopping:`, give sel.select() a timeout, and "
                     "never wait anywhere else (a blocking recv(), time.sleep) in serve().")
    except LearnerStopped:
        pass
    except Exception as exc:  # the learner's loop died
        _raise_for_loop(exc)


def _raise_for_loop(exc: BaseException):
    if isinstance(exc, LearnerBaseException):
        message, hint = base_exception_failure("serve()", exc.original)
        raise NotYet(f"your loop died: {message}", hint)
    if isinstance(exc, NotImplementedError):
        raise NotYet(NOT_IMPLEMENTED_MESSAGE, NOT_IMPLEMENTED_HINT)
    if isinstance(exc, KeyError) and "registered" in str(exc):
        raise NotYet("your loop crashed: a new connection's descriptor was still registered in "
                     "the selector (KeyError)",
                     "unregister a connection from the selector before you close it "
                     "(sel.unregister(conn.sock), then conn.close(...)).")
    raise NotYet(f"your loop crashed: {describe_exception(exc)}",
                 "read the error; the loop must survive closing connections.")


def _check_alive(server) -> None:
    if not server.running:
        error = server.error
        server.error = None   # reported here; stop() need not raise it again
        if error is not None and not isinstance(error, LearnerStopped):
            _raise_for_loop(error)
        raise NotYet("your server's loop ended by itself",
                     "loop `while not self.stopping:` like the selectors server does.")


def _idle_alone(server) -> None:
    with connect(server.address, timeout=3.0) as idle:
        after = _closed_by_server(idle, IDLE_TIMEOUT + SLACK, server)
    _check_alive(server)
    if after is None:
        raise NotYet(f"a client that sent nothing was still connected after "
                     f"{IDLE_TIMEOUT + SLACK:g} s (idle_timeout={IDLE_TIMEOUT:g})",
                     "when nobody talks, sel.select() without a timeout sleeps forever, and "
                     "the loop never looks at the clocks: give select() a timeout. And an idle "
                     "socket is never in select()'s answer: after it, look at the clock of "
                     "every registered connection (sel.get_map()), not only the ready ones.")
    if after < IDLE_TIMEOUT * 0.8:
        raise NotYet(f"an idle client was closed sooner than idle_timeout={IDLE_TIMEOUT:g} s",
                     "close a connection only when now - last activity > idle_timeout.")


def _idle_beside_active(server) -> None:
    outcome: dict = {}
    seconds = IDLE_TIMEOUT * 2   # the idle one is closed meanwhile; this one must outlive it
    chatty = threading.Thread(target=_chatty_client, args=(server.address, 0.05, seconds, outcome),
                              name="check-idle-chatty", daemon=True)
    with connect(server.address, timeout=3.0) as idle:
        chatty.start()
        after = _closed_by_server(idle, IDLE_TIMEOUT + SLACK, server)
        chatty.join(seconds + 5)
    _check_alive(server)
    if "error" in outcome or chatty.is_alive():
        raise NotYet("a client that talked every 0.05 s was cut off "
                     f"({outcome.get('error', 'no reply')})",
                     "a connection is idle only if nothing came for idle_timeout seconds: "
                     "note the time of the last activity each time data arrives "
                     "(e.g. key.data.last_active = time.monotonic()).")
    if after is None:
        raise NotYet("with a busy client connected, an idle one beside it was never closed",
                     "check every connection's last activity on every turn of the loop, "
                     "not only the one that was ready.")


def _still_serving(server) -> None:
    try:
        reply = request(server.address, b"are you there?", timeout=3.0)
    except (OSError, TimeoutError, ConnectionError) as exc:
        _check_alive(server)
        raise NotYet("after closing idle clients, a new client got no echo "
                     f"({describe_exception(exc)})",
                     "the loop must go on serving after it closes a connection.") from None
    if reply != b"ARE YOU THERE?":
        raise NotYet(f"a new client got {reply!r} back", "keep the echo as it was.")
