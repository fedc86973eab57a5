"""Checkers for notebook 03 (the polling loop): fix two flaws of the classic server.

The learner rewrites one step of :class:`~nbio_helpers.classic.ClassicPollingServer`; the
checker runs the classic loop (every other flaw fixed) with the learner's step in it, as a
real server in a background thread, and proves the fix with real clients:

* :func:`check_send_pending` — ``send_pending(wlist)``: one ``send()`` per pending
  ``[sock, data]`` pair. Proven with a 1 MiB echo through small buffers (a partial send that
  loses its rest loses bytes), normal traffic from 10 clients, and 8 clients answered at once
  (a list changed while iterated skips replies, which then wait extra rounds).
* :func:`check_accept_new` — ``accept_new(listener)``: accept every waiting client, return the
  sockets ready to be polled. Proven with a quiet client next to an active one (a blocking
  accepted socket freezes the loop) and 20 clients at once.

Usage in the notebook::

    from nbio_helpers.exercises.nb03 import check_send_pending, check_accept_new
    check_send_pending(send_pending)
"""
from __future__ import annotations

import contextlib
import itertools
import socket

from ..classic import ClassicPollingServer, burst, echo_payload, is_starved, send_rounds
from ..clients import run_load
from ..events import ACCEPT_WOULD_BLOCK, SEND
from . import (NOT_IMPLEMENTED_HINT, NOT_IMPLEMENTED_MESSAGE, LearnerBaseException,
               LearnerStopped, NotYet, base_exception_failure, call_learner, checker,
               describe_exception, guarded, running_for, stop_learner_code, where)

PAYLOAD = 1 << 20
"""Bytes echoed through small buffers by :func:`check_send_pending`."""

SNDBUF = 4096
"""SO_SNDBUF of the accepted sockets in the checks: small, so sends come out partial."""

STUCK_AFTER = 1.0
"""A learner's step still running after this many seconds is stuck: one round of the loop
takes microseconds."""

BURST_CLIENTS = 8
BURST_PAUSE = 0.02

ACCEPT_HINT = ("accept() raises BlockingIOError when nobody is waiting: catch it and return "
               "the sockets accepted so far.")
PAIR_HINT = ("accept() returns a pair (socket, address): keep the socket only, "
             "sock, _ = listener.accept(), and return a list of those.")


class WrongReturn(TypeError):
    """The learner's step returned something the loop cannot use; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint

_servers = itertools.count(1)


class LearnerClassicServer(ClassicPollingServer):
    """The classic server with every flaw fixed, except that the learner's step replaces ours.

    Its thread is named ``learner-…``: if the learner's code hangs, it is not mistaken for a
    server of the package by ``finish()``.
    """

    model = "classic-learner"

    def __init__(self, *, send_pending=None, accept_new=None, **kwargs):
        kwargs.setdefault("name", f"check-classic-{next(_servers)}")
        super().__init__(fix="all", **kwargs)
        # Guarded: the harness can time them, say where they hang, and stop them; a
        # KeyboardInterrupt or SystemExit they raise kills the loop like any error.
        self.learner_send_pending = send_pending and guarded(send_pending, name="send_pending")
        self.learner_accept_new = accept_new and guarded(accept_new, name="accept_new")
        self.returned_blocking = 0   # sockets accept_new returned in blocking mode

    def start(self) -> "LearnerClassicServer":
        super().start()
        self._thread.name = f"learner-{self.name}"
        return self

    def send_pending(self, wlist: list) -> None:
        if self.learner_send_pending is None:
            return super().send_pending(wlist)
        before = [(item, item[0], len(item[1])) for item in wlist]
        self.learner_send_pending(wlist)
        # The learner's code records nothing: log a SEND for each pair it removed or shortened.
        still = {id(item): len(item[1]) for item in wlist
                 if isinstance(item, list) and len(item) == 2}
        for item, sock, size in before:
            left = still.get(id(item), 0)
            if left < size:
                self.events.record(SEND, self.ids.get(sock), size - left)

    def accept_new(self) -> list:
        if self.learner_accept_new is None:
            return super().accept_new()
        new = self.learner_accept_new(self.listener)
        if not isinstance(new, list) or not all(isinstance(s, socket.socket) for s in new):
            _close_found(new)                   # the loop dies next: leave no socket open
        if not isinstance(new, list):
            raise WrongReturn(f"accept_new() returned {type(new).__name__}, not a list of sockets",
                              "return a list of the sockets accepted: [] when nobody is waiting.")
        odd = [item for item in new if not isinstance(item, socket.socket)]
        if odd:
            raise WrongReturn(f"accept_new() returned a list of {type(odd[0]).__name__}, "
                              "not of sockets", PAIR_HINT)
        self.events.record(ACCEPT_WOULD_BLOCK)  # one per round, as the classic loop does
        # Python's own mode: on macOS and Windows the descriptor may be non-blocking anyway
        # (inherited from the listener), so a freeze alone would miss the mistake there.
        self.returned_blocking += sum(sock.getblocking() for sock in new)
        for sock in new:
            if self.sndbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
            self.ids[sock] = self.track(sock)
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
        with contextlib.suppress(Exception, LearnerStopped):
            server.stop(timeout=STUCK_AFTER)
        if server.running:
            stop_learner_code([server._thread.ident])


def _raise_if_stuck(server, step: str) -> None:
    """Fail if the learner's step has been running for more than :data:`STUCK_AFTER` s."""
    if running_for(server._thread) > STUCK_AFTER:
        place = where(server._thread)
        raise NotYet(f"{step}() did not return within {STUCK_AFTER:g} s"
                     + (f": it was still running {place}" if place else ""),
                     "one round of the loop must not wait: never call a blocking method "
                     "(sendall(), a blocking recv()/accept(), time.sleep) and never loop "
                     "until something happens; do what can be done now and return.")


def _raise_loop_error(server, step: str, ignore=()) -> None:
    """If the learner's step killed the loop (or hangs), fail with what it did (unless the
    error is one of ``ignore``)."""
    _raise_if_stuck(server, step)
    error = server.error
    if error is None or isinstance(error, ignore) or isinstance(error, LearnerStopped):
        return
    if isinstance(error, LearnerBaseException):
        message, hint = base_exception_failure(f"{step}()", error.original)
        raise NotYet(f"the server loop died: {message}", hint)
    if isinstance(error, NotImplementedError):
        raise NotYet(NOT_IMPLEMENTED_MESSAGE, NOT_IMPLEMENTED_HINT)
    if isinstance(error, WrongReturn):
        raise NotYet(str(error), error.hint)
    if isinstance(error, BlockingIOError):
        hint = ("BlockingIOError means 'not now': catch it and leave that item for the next "
                "round." if step == "send_pending" else ACCEPT_HINT)
    elif "'tuple' object" in str(error) and step == "accept_new":
        hint = PAIR_HINT
    else:
        hint = "read the error, fix the function, run its cell again."
    raise NotYet(f"the server loop died: {step}() raised {describe_exception(error)}", hint)


@checker
def check_send_pending(send_pending):
    """Check ``send_pending(wlist)``: partial sends keep their rest, nothing is skipped."""
    call_learner(send_pending, [], timeout=2.0)  # the stub, or a crash on an empty list

    with _learner_server("send_pending", send_pending=send_pending, sndbuf=SNDBUF) as server:
        outcome = echo_payload(server.address, PAYLOAD, timeout=10.0, quiet=1.0)
        # A reset after the client hung up is the echo's fault, reported from the outcome.
        _raise_loop_error(server, "send_pending", ignore=ConnectionError)
        if outcome.received > outcome.sent:
            raise NotYet(f"{outcome.received:,} bytes came back for {outcome.sent:,} sent: "
                         "some were sent twice",
                         "call send() once and keep only the rest, item[1] = data[sent:] "
                         "(sendall() on a non-blocking socket can raise after sending a part, "
                         "which is then sent again); remove sent pairs from wlist itself.")
        if outcome.lost:
            raise NotYet(f"{outcome.lost:,} of {outcome.sent:,} bytes never came back "
                         "(1 MiB echo, small buffers)",
                         "send() may take only part of the data: keep the rest, "
                         "item[1] = data[sent:], and remove the pair only once all is sent.")
        if not outcome.intact:
            raise NotYet("the echo of 1 MiB came back scrambled",
                         "send the rest of a partial send before anything else for that socket.")
        _raise_loop_error(server, "send_pending")
        load = run_load(server.address, clients=10, messages=20, size=64, timeout=5.0)
        _raise_loop_error(server, "send_pending")
        if not load.ok:
            first = load.errors[0] if load.errors else "incomplete"
            raise NotYet(f"10 clients x 20 messages: {first}",
                         "every pending pair needs one send() per round; remove it once sent.")

    with _learner_server("send_pending", send_pending=send_pending, pause=BURST_PAUSE) as server:
        delays = burst(server.address, BURST_CLIENTS, timeout=3.0)
        _raise_loop_error(server, "send_pending")
    if delays[-1] == float("inf"):
        raise NotYet(f"{delays.count(float('inf'))} of {BURST_CLIENTS} clients got no reply",
                     "remove a pair from wlist only after its data was sent.")
    rounds = send_rounds(server.events)      # once stopped: every send is in the log
    if rounds > 2:
        raise NotYet(f"{BURST_CLIENTS} replies pending at once took {rounds} rounds to send",
                     "removing items from a list while iterating over it skips the next "
                     "one: iterate over a copy, for item in wlist[:].")
    return (f"a 1 MiB echo came back intact through {SNDBUF}-byte buffers, 200 messages "
            f"from 10 clients too, and {BURST_CLIENTS} pending replies went out in one round")


@checker
def check_accept_new(accept_new):
    """Check ``accept_new(listener)``: returns non-blocking sockets; a quiet client is harmless."""
    with socket.create_server(("127.0.0.1", 0)) as empty:
        empty.setblocking(False)
        try:
            got = call_learner(accept_new, empty, timeout=2.0)  # nobody waiting
        except NotYet as failure:
            if "BlockingIOError" in failure.message:
                raise NotYet("with nobody waiting, " + failure.message, ACCEPT_HINT) from None
            raise
        if got != []:
            raise NotYet(f"with nobody waiting it returned {got!r}, expected []",
                         "return the list of sockets accepted: [] when nobody is waiting.")

    with _learner_server("accept_new", accept_new=accept_new) as server:
        starved = is_starved(server, wait=1.0)
        _raise_loop_error(server, "accept_new")
        blocking_hint = ("accept() returns a socket in blocking mode (on Linux truly so): "
                         "call sock.setblocking(False) before polling it.")
        if starved:
            raise NotYet("a client that sends nothing froze the whole server: the other "
                         "client got no reply", blocking_hint)
        if server.returned_blocking:
            raise NotYet("the sockets it returned are in blocking mode (getblocking() is "
                         "True): on Linux one quiet client would freeze the whole server",
                         blocking_hint)
        load = run_load(server.address, clients=20, messages=5, size=64, timeout=5.0)
        _raise_loop_error(server, "accept_new")
        if not load.ok:
            raise NotYet(f"20 clients at once: {load.errors[0] if load.errors else 'incomplete'}",
                         "accept in a loop until BlockingIOError, returning every socket.")
    return "a quiet client no longer freezes anyone, and 20 clients at once were all served"


__all__ = ["LearnerClassicServer", "check_accept_new", "check_send_pending"]
