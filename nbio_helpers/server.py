"""The server lifecycle, written once: every model inherits it.

A model only writes :meth:`Server.serve`, the loop (the contract for models is in the
docstring of :class:`Server`). Everything around the loop lives here: binding (``127.0.0.1``,
port 0 = a free port), the background daemon thread, the event log, CPU accounting, and one
stop rule for every model: under a lock, shut down every socket the server owns, wake the loop
through a socketpair, join its threads, close every socket, and re-raise whatever killed the
loop.

Usage::

    with SelectServer() as server:        # started, bound to 127.0.0.1:<free port>
        request(server.address, b"hi")    # -> b"HI"
    # stopped: thread joined, every socket closed

    server = SelectServer(name="demo").start()   # same name again stops this one first
    server.stop(); server.stop()                  # idempotent
    server.address          # ServerStoppedError: "server 'demo' was stopped (...); run the
                            # cell that starts it again"

    server.stop(grace=1.0)  # graceful: no new clients, no more reading; the replies to what
                            # was read are sent (for up to 1 s), then every socket is closed

Starting and stopping cannot be cut in half by Ctrl-C (see :mod:`nbio_helpers.interrupts`): an
interrupt during ``start()`` leaves no server behind, one during ``stop()`` lets it finish.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import itertools
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import ClassVar

from nbio_helpers import registry
from nbio_helpers.addresses import address_family
from nbio_helpers.cpu import ThreadCPU
from nbio_helpers.events import ACCEPT, CLOSE, ERROR, EventLog
from nbio_helpers.interrupts import interrupts_deferred, join_interruptibly, uninterruptible
from nbio_helpers.limits import ensure_fd_room
from nbio_helpers.protocol import WaterMarks

HIGH_WATER = 1024 * 1024
"""Backpressure: stop reading a connection whose pending output exceeds this many bytes."""

RECV_SIZE = 64 * 1024
"""How many bytes one ``recv()`` asks for."""

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name, or "" (every interface)
        return False


_unnamed = itertools.count(1)


class ServerStopTimeout(RuntimeError):
    """The server thread did not end within the time ``stop()`` allowed."""


class ServerStoppedError(RuntimeError):
    """A stopped server was used: its sockets are closed, and it cannot be started again."""


STOPPED_BY_STOP = "stop() was called"


class Server:
    """Base class of every server model: runs :meth:`serve` in a daemon thread.

    Parameters
    ----------
    host, port:
        Where to listen. Default ``127.0.0.1`` and port 0 (the OS picks a free port);
        read the real one from :attr:`address`.
    name:
        Registry name. Starting a server with the name of a running one stops the old one.
    backlog:
        ``listen()`` backlog; large, so hundreds of clients can wait to be accepted.
    record_events:
        Keep individual events (for timelines). Counters are kept either way.
    high_water:
        Backpressure: stop reading a connection once more than this many bytes of its
        output are pending.
    low_water:
        ... and read it again once they have drained to this many bytes or fewer. None (the
        default): a quarter of ``high_water``, as asyncio does. Both are checked as
        :class:`~nbio_helpers.protocol.WaterMarks` are (``TypeError``, ``ValueError``).
    recv_size:
        How many bytes one ``recv()`` asks for.
    sock_buffer_size:
        If given, ``SO_SNDBUF`` and ``SO_RCVBUF`` (bytes) of every accepted socket: small
        kernel buffers make partial sends happen (tests, demos). None = the OS default.

    Methods for the caller: :meth:`start`, :meth:`stop`, the context manager, and the read-only
    :attr:`address`, :attr:`running`, :attr:`stopped`, :meth:`open_connections`,
    :meth:`refusals`, :meth:`cpu_time`, :attr:`events`, :attr:`error`, :attr:`unfinished`.

    Writing a model
    ---------------
    A model is a subclass that sets :attr:`model` (its name) and writes one method:

    ``serve()``
        The loop. It runs in the server's thread, started by :meth:`start`, with
        :attr:`listener` bound and listening. It must return soon after :attr:`stopping`
        becomes True, and block only where :meth:`stop` ends the wait: in ``select()``, a
        selector or an event loop that also watches :attr:`waker`; in :meth:`sleep`; in a
        ``recv()`` or ``send()`` on a socket the server owns. Never in ``accept()``: make the
        listener non-blocking (:meth:`wait_for_client` waits for it). What ``serve()``
        raises ends the server; :meth:`stop` raises it again in the caller's thread.

    What a model may call (from the server thread, or from a thread it started with
    :meth:`start_thread`):

    - :attr:`stopping`: True once :meth:`stop` has begun: accept and read no more, return soon.
    - :meth:`sleep` ``(seconds) -> bool``: a sleep that :meth:`stop` cuts short; True when the
      server is stopping (``while not self.sleep(interval): ...``).
    - :meth:`wait_for_client` ``() -> bool``: wait until a client can be accepted; False
      once the server is stopping. :attr:`waker` and :meth:`drain_waker`: the socket that
      :meth:`stop` makes readable, for a loop that waits in ``select()``, a selector or an
      event loop (add it to what the loop waits on; drain it when it is readable).
    - :func:`~nbio_helpers.connection.accept_all`, which calls :meth:`own` for every socket
      it accepts; :meth:`track` ``(sock, owner) -> id`` for each connection served (its id
      in the event log); :meth:`close_connection`, or :meth:`forget` for a socket that
      something else closes (an asyncio transport).
    - :meth:`start_thread` ``(thread) -> bool``: start a thread that serves clients; stop()
      joins it. False once the server is stopping (the thread is not started).
    - :attr:`events`, :meth:`new_conn_id`, :meth:`count_refusal`, :attr:`cpu`,
      :attr:`recv_size`, :attr:`high_water`, :meth:`set_buffer_sizes`; during a graceful
      stop, :attr:`in_grace_period` and :meth:`grace_left`.

    What a model may override (hooks; the defaults do what every model here needs):

    - :meth:`finish_replies`: a graceful stop, after :meth:`serve` returned: send the replies
      still pending (the default does it for every :class:`~nbio_helpers.connection.Connection`).
    - :meth:`on_stop`: tell a loop that does not watch :attr:`waker` to end (asyncio's own
      loop, ``socketserver``'s ``serve_forever``), and join what it started. Called by stop()
      in the caller's thread, after every owned socket was shut down; it must return promptly.
    - :meth:`open_connections`, when the model keeps its connections itself.

    What :meth:`stop` guarantees, the same for every model (the one stop rule):

    - It runs once, under a lock: concurrent and repeated calls wait for the first one and
      return quietly.
    - Under the same lock as :meth:`own`, it marks the server as stopping and shuts down
      (``SHUT_RDWR``) every socket owned so far; a socket owned later is shut down at once
      (:func:`~nbio_helpers.connection.accept_all` closes it), and :meth:`start_thread`
      starts no more threads. So no socket escapes it, however the threads interleave. A
      thread blocked in ``recv()`` or ``sendall()`` on a shut-down socket returns (an EOF, or
      an ``OSError``), and so does one about to call them.
    - It then writes to :attr:`waker`, which wakes a loop waiting in ``select()``, a selector
      or an event loop, on every OS (the listener is not shut down: on Linux that makes
      ``accept()`` fail with EINVAL, which a loop expecting ``BlockingIOError`` dies of), calls
      :meth:`on_stop`, joins the server thread and every thread of :meth:`start_thread`
      (``timeout`` seconds for all of them), closes every socket, the listener and the
      waker, and forgets the server in the registry: every step runs even if one fails.
    - It raises :class:`ServerStopTimeout` if a thread is still alive after ``timeout``
      (its sockets are closed anyway), else the exception that ended :meth:`serve`, if any
      (once: it stays on :attr:`error`).
    - ``stop(grace=...)`` first lets the loop finish by itself: :attr:`stopping` becomes
      True, nothing new is owned, and :attr:`in_grace_period` stays True while the replies
      to what was read go out (:meth:`finish_replies`); the fast stop above follows.

    Capabilities
    ------------
    Class attributes that say what a model is and what it promises. The tests (the
    conformance suite runs every promise on every server that makes it), the bench, the
    command line and the exercises read them; no list of model names is kept anywhere else.
    A capability left at its default promises nothing, so nothing checks it (a concurrent
    model sets ``max_connections`` too: the suite checks that the two agree).

    model: str (default ``"base"``)
        The model's name: ``start_server(model)``, ``nbio serve --model``, the bench's rows,
        and the default :attr:`name` prefix.
    taught_in: tuple[int, int] | None (default None)
        ``(notebook, section)`` where the series teaches the model: ``(5, 4)`` is notebook 05,
        section 4. A class of the :mod:`nbio_helpers.models` package that sets it (and its own
        ``model``) is one of :data:`~nbio_helpers.models.MODELS`, which is sorted by it (the
        teaching order). A subclass defined anywhere else (a demo, a variant, a learner's)
        inherits it and is still not a model.
    concurrent: bool (default False)
        Serves several clients at the same time (one quiet client does not hold up another).
    nonblocking: bool (default False)
        Its sockets are non-blocking: the loop never waits inside ``recv()``, ``send()`` or
        ``accept()`` (it waits in a readiness call, or not at all).
    waits_for_readiness: bool (default False)
        The loop sleeps in the kernel (``select``, ``poll``, ``epoll``, ``kqueue``) until a
        socket is ready: no CPU and no wake-up while every client is quiet.
    max_connections: int | None (default 1)
        The most clients served at the same time, by the model's own design: 1 (one at a
        time), a number (``select()``: descriptors below ``FD_SETSIZE`` on POSIX, 512 sockets
        on Windows; fewer in practice, as other descriptors are open), or None: no limit of
        its own (the descriptor limit, ``ulimit -n``, still applies).
    logs_connections: bool (default False)
        Records every connection's ``ACCEPT``, ``RECV``, ``EOF`` and ``CLOSE`` in
        :attr:`events` (the bench's peers keep no such log).
    buffers_output: bool (default False)
        Keeps each connection's pending output in a buffer of its own and sends it as the
        socket takes it, recording every ``send()`` (``SEND`` events, partial ones included).
    backpressure: bool (default False)
        Stops reading a client whose reply it cannot send (pending output over
        ``high_water``, or a blocking ``sendall()``) until that client reads; with
        :attr:`buffers_output`, each stop and restart is recorded (``PAUSE``, ``RESUME``).
    connection_class: type | None (default None)
        The class whose instances hold each connection's state and are called by the loop
        (:class:`~nbio_helpers.connection.Connection` for polling, select and selectors);
        None when the loop keeps that state itself.
    """

    # ------------------------------------------------------------- capabilities (see above)
    model: ClassVar[str] = "base"
    taught_in: ClassVar[tuple[int, int] | None] = None
    concurrent: ClassVar[bool] = False
    nonblocking: ClassVar[bool] = False
    waits_for_readiness: ClassVar[bool] = False
    max_connections: ClassVar[int | None] = 1
    logs_connections: ClassVar[bool] = False
    buffers_output: ClassVar[bool] = False
    backpressure: ClassVar[bool] = False
    connection_class: ClassVar[type | None] = None
    # ------------------------------------------------------------- end of capabilities

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str | None = None,
        backlog: int = 1024,
        record_events: bool = True,
        high_water: int = HIGH_WATER,
        low_water: int | None = None,
        recv_size: int = RECV_SIZE,
        sock_buffer_size: int | None = None,
    ):
        self.host = host
        self.port = port
        self.name = name or f"{self.model}-{next(_unnamed)}"
        self.backlog = backlog
        marks = WaterMarks(high_water, low_water)  # validated, low defaulting as in asyncio
        self.high_water = marks.high
        self.low_water = marks.low
        self.recv_size = recv_size
        self.sock_buffer_size = sock_buffer_size
        self.events = EventLog(enabled=record_events)
        self.cpu = ThreadCPU()
        if self.cpu.needs_samples:  # e.g. macOS: each event recorded also reports the CPU used
            self.events.on_record = self.cpu.sample
        self.error: BaseException | None = None
        self._listener: socket.socket | None = None
        self.unfinished = 0
        """Connections a graceful stop had to close before their replies were all sent."""
        self._address: tuple[str, int] | None = None
        self._waker_r: socket.socket | None = None
        self._waker_w: socket.socket | None = None
        self._stop_requested = threading.Event()  # stop accepting and reading; return soon
        self._stop_now = threading.Event()  # ... and close every connection at once
        self._grace_until: float | None = None  # a graceful stop's deadline (monotonic)
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._stopped_because = ""
        self._error_raised = False
        self._conn_ids = itertools.count(1)
        # The one stop rule's state. _lock guards what stop() and the server's threads share:
        # the owned sockets, the threads to join, and the two flags below.
        self._lock = threading.Lock()
        self._open: dict[socket.socket, object] = {}  # owned socket -> its owner (or None)
        self._threads: set[threading.Thread] = set()  # started by start_thread()
        self._refused: collections.Counter[str] = collections.Counter()
        self._stop_began = False  # nothing new is owned or started: shut down at once
        self._closed = False  # stop() closed every owned socket: close at once
        self._stop_lock = threading.RLock()  # one stop() at a time
        self._in_stop = False  # a stop() is running (in the thread holding _stop_lock)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Server:
        """Bind, listen and start the loop in a daemon thread. Returns ``self``.

        Interrupted (Ctrl-C) or failing half-way, it undoes what it did and raises: no thread,
        no socket and no registry entry is left behind.
        """
        if self._stopped:
            raise ServerStoppedError(
                f"{self._stale_message()}; a stopped server cannot be started again"
            )
        if self._thread is not None:
            raise RuntimeError(f"server {self.name!r} was already started")
        if not is_loopback(self.host):
            warnings.warn(
                f"{self.host} is not a loopback address: this server is reachable from the network",
                stacklevel=2,
            )
        try:
            with interrupts_deferred():  # an interrupt is delivered as the block ends...
                self._start()
        except BaseException:  # ... and lands here, as a failure does
            uninterruptible(self._undo_start)
            raise
        return self

    def _start(self) -> None:
        registry.stop_named(self.name, reason=f"a new server named {self.name!r} replaced it")
        ensure_fd_room(self.backlog)  # room for as many clients as may wait (macOS: 256)
        self._listener = socket.create_server(
            (self.host, self.port), family=address_family(self.host), backlog=self.backlog
        )
        self._address = self.listener.getsockname()[:2]
        # Accepted sockets inherit the listener's buffer sizes (also those asyncio accepts).
        self.set_buffer_sizes(self.listener)
        self._waker_r, self._waker_w = socket.socketpair()
        self._waker_r.setblocking(False)
        self._waker_w.setblocking(False)
        self._thread = threading.Thread(target=self._run, name=f"nbio-{self.name}", daemon=True)
        registry.register(self)
        self._thread.start()

    def _undo_start(self) -> None:
        """Leave no trace of a start that failed or was interrupted (idempotent)."""
        if self._thread is not None and self._thread.ident is not None:  # the loop ran
            self._teardown(timeout=5.0, reason="it was interrupted while starting")
            return
        registry.unregister(self)
        for sock in (self._listener, self._waker_r, self._waker_w):
            if sock is not None:
                sock.close()
        self._listener = self._waker_r = self._waker_w = self._thread = None
        self._address = None

    def stop(self, timeout: float = 5.0, *, grace: float = 0.0, reason: str | None = None) -> None:
        """Stop the loop, join its thread(s), close every socket. Safe to call twice.

        Parameters
        ----------
        timeout:
            Seconds to wait for the thread(s) to end once they are told to stop at once.
        grace:
            0 (the default): close every connection at once. More: a graceful stop that lasts
            at most ``grace`` seconds: accept no new client and read no more, send the replies
            to what was read, then close each connection the polite way (our EOF, then the
            client's). A ``KeyboardInterrupt`` during the grace period stops at once (and is
            raised again afterwards). :attr:`unfinished` counts the connections cut short.
        reason:
            Why the server is stopped, for the error it raises if it is used afterwards
            (default: "stop() was called").

        Raises the exception that killed the loop, if any (once; it stays on ``.error``),
        and :class:`ServerStopTimeout` if a thread does not end within ``timeout``. Calls
        from several threads at once are safe: each waits for the first to finish. What it
        does, step by step, is the class's stop rule (see :class:`Server`).
        """
        if self._thread is None:
            return
        with self._stopping_alone():
            if self._stopped or self._in_stop:
                return
            self._in_stop = True
            try:
                try:
                    if grace > 0 and not self._stop_requested.is_set():
                        self._finish(grace)
                finally:  # even if interrupted: half-stopped, the server would keep its sockets
                    uninterruptible(self._teardown, timeout, reason or STOPPED_BY_STOP)
            finally:
                self._in_stop = False
        alive = [t for t in self._all_threads() if t.is_alive()]
        if alive:
            workers = "" if self._thread in alive else f" ({len(alive)} client thread(s) still run)"
            raise ServerStopTimeout(
                f"server {self.name!r} did not stop within {timeout} s{workers}"
            )
        if self.error is not None and not self._error_raised:
            self._error_raised = True
            raise self.error

    @contextlib.contextmanager
    def _stopping_alone(self) -> Iterator[None]:
        """Hold the stop lock; wait for it in slices, so that Ctrl-C is felt meanwhile (a
        Windows kernel interrupt only sets a flag, which one long wait would not see)."""
        while not self._stop_lock.acquire(timeout=0.05):
            pass
        try:
            yield
        finally:
            self._stop_lock.release()

    def _finish(self, grace: float) -> None:
        """The graceful part of ``stop(grace=...)``: let the loop finish by itself, in time."""
        self._grace_until = time.monotonic() + grace
        with self._lock:
            self._stop_began = True  # no new client from now on
            self._stop_requested.set()
        self._wake()
        join_interruptibly(self._all_threads(), max(0.0, self._grace_until - time.monotonic()))

    def _teardown(self, timeout: float, reason: str) -> None:
        """The fast stop: shut down, wake, join, close every socket, forget the server.

        Every step runs even if an earlier one fails (the first failure is raised at the end):
        what matters most is that nothing is left open or registered."""
        self._stopped_because = reason
        if self._grace_until is not None:
            self.unfinished = self.open_connections()
        deadline = time.monotonic() + timeout
        failure = None
        for step in (
            self._shut_down_all,
            self._wake,
            self.on_stop,
            lambda: self._join_all(deadline),
            self._close_all,
            lambda: registry.unregister(self),
        ):
            try:
                step()
            except BaseException as exc:
                failure = failure or exc
        self._stopped = True
        if failure is not None:
            raise failure

    def _shut_down_all(self) -> None:
        """Mark the server as stopping and shut down every socket it owns, under the lock.

        ``shutdown(SHUT_RDWR)`` makes a ``recv()`` blocked on the socket return ``b''`` and a
        blocked ``sendall()`` fail with BrokenPipeError (checked on Linux by a run; the
        ``recv()`` side by tests/test_stop_races.py). The socket stays open, so a loop that
        still holds it gets an error or an EOF, never a closed descriptor (``select()``
        refuses those with ValueError).

        The listener is not shut down. No model blocks in ``accept()``: each waits for the
        listener together with :attr:`waker` (a socketpair, which works on every OS), and the
        waker wakes it. And on Linux a shut-down listener makes ``accept()`` fail with EINVAL,
        which a loop that expects only ``BlockingIOError`` would die of.
        """
        try:
            with self._lock:
                self._stop_began = True
                for sock in self._open:
                    shutdown_quietly(sock)
        finally:  # after the sockets: a loop that wakes up finds them shut down already
            self._stop_requested.set()
            self._stop_now.set()

    def _join_all(self, deadline: float) -> None:
        """Join the server thread, then every thread of :meth:`start_thread`, by ``deadline``.

        Signals are deferred here (:func:`uninterruptible`), so one join per thread is enough;
        a join that fails anyway does not spare the other threads theirs (the first failure is
        raised after the last join)."""
        failure: BaseException | None = None
        for thread in self._all_threads():
            if thread.ident is not None:  # it was started
                try:
                    thread.join(max(0.0, deadline - time.monotonic()))
                except BaseException as exc:
                    failure = failure or exc
        if failure is not None:
            raise failure

    def _all_threads(self) -> list[threading.Thread]:
        main = [self._thread] if self._thread is not None else []
        return main + self._client_threads()

    def _client_threads(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._threads)

    def __enter__(self) -> Server:
        if self._thread is None or self._stopped:
            self.start()  # a stopped server raises ServerStoppedError here
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        except KeyboardInterrupt:  # it came as stop() began: stop anyway, then say so
            if not self._stopped and self._thread is not None:
                with self._stopping_alone():
                    if not self._stopped:
                        uninterruptible(self._teardown, 5.0, STOPPED_BY_STOP)
            raise

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` to connect to."""
        if self._stopped:
            raise ServerStoppedError(self._stale_message())
        if self._address is None:
            raise RuntimeError("the server is not started: call start() first")
        return self._address

    def _stale_message(self) -> str:
        return (
            f"server {self.name!r} was stopped ({self._stopped_because}); run the cell "
            "that starts it again"
        )

    @property
    def listener(self) -> socket.socket:
        """The listening socket (bound by :meth:`start`, closed by :meth:`stop`)."""
        if self._listener is None:
            raise RuntimeError("the server is not started: call start() first")
        return self._listener

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` was called: accept and read no more, return soon."""
        self.cpu.sample()  # every loop checks this each turn: where CPU time is self-reported
        return self._stop_requested.is_set()

    @property
    def in_grace_period(self) -> bool:
        """True during a graceful stop's grace period: replies to what was read still go out."""
        return (
            self._grace_until is not None
            and not self._stop_now.is_set()
            and time.monotonic() < self._grace_until
        )

    def grace_left(self) -> float:
        """Seconds left in a graceful stop's grace period (0 when there is none)."""
        if self._grace_until is None or self._stop_now.is_set():
            return 0.0
        return max(0.0, self._grace_until - time.monotonic())

    @property
    def stopped(self) -> bool:
        """True once ``stop()`` has finished: every socket is closed."""
        return self._stopped

    @property
    def thread(self) -> threading.Thread | None:
        """The thread that runs :meth:`serve` (None before :meth:`start`): for a checker that
        times, locates or stops the code a learner wrote into ``serve()``."""
        return self._thread

    @property
    def running(self) -> bool:
        """True while the loop's thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def cpu_time(self) -> float:
        """CPU seconds used so far by this server's own thread(s)."""
        return self.cpu.total()

    def refusals(self) -> dict[str, int]:
        """Clients turned away so far, by reason: ``{"out of descriptors (ulimit -n 64)": 3}``."""
        with self._lock:
            return dict(self._refused)

    def open_connections(self) -> int:
        """How many accepted connections are open now."""
        with self._lock:
            return len(self._open)

    def __repr__(self) -> str:
        state = "running" if self.running else ("stopped" if self._stopped else "not started")
        return f"<{type(self).__name__} {self.name!r} {state}>"

    # ------------------------------------------------------------- for the models
    def serve(self) -> None:
        """The loop. Runs in the server thread; must return soon after :attr:`stopping`."""
        raise NotImplementedError

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; ``stop()`` cuts the sleep short. True if the server is
        stopping (then the loop should end), False if the whole time passed.

        ``time.sleep()`` in a server thread cannot be cut short (signals reach only the main
        thread): ``stop()`` would wait it out. This sleep waits on the event that ``stop()``
        sets as it begins (a graceful stop's too). ``sleep(0)`` returns at once.
        """
        self._stop_requested.wait(seconds)
        return self.stopping

    def finish_replies(self) -> None:
        """Hook, graceful stop only: runs in the server thread after :meth:`serve` returned.

        The default sends the pending output of every :class:`~nbio_helpers.connection.Connection`
        (the polling, select and selectors models) until the grace period ends.
        """
        from nbio_helpers.connection import (  # connection.py needs no server
            Connection,
            finish_replies,
        )

        with self._lock:
            connections = [c for c in self._open.values() if isinstance(c, Connection)]
        finish_replies(self, connections)

    def on_stop(self) -> None:
        """Hook, for a loop that does not watch :attr:`waker`: tell it to end.

        Called by ``stop()`` in the caller's thread, once :attr:`stopping` is True and every
        owned socket is shut down, before the threads are joined; the default does nothing.
        Override it for a loop this package did not write (an asyncio loop of its own,
        ``socketserver``'s ``serve_forever``), and join there what that loop started. It must
        return promptly: ``stop()``'s ``timeout`` starts after it.
        """

    def new_conn_id(self) -> int:
        """A small integer naming a connection in the event log."""
        return next(self._conn_ids)

    def set_buffer_sizes(self, sock: socket.socket) -> None:
        """Apply ``sock_buffer_size`` (if any) to ``sock``'s kernel send and receive buffers."""
        if self.sock_buffer_size is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sock_buffer_size)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.sock_buffer_size)

    def own(self, sock: socket.socket, owner: object = None) -> bool:
        """Make ``stop()`` responsible for ``sock``: it shuts it down and closes it.

        Call it the moment the socket exists (:func:`~nbio_helpers.connection.accept_all` does,
        for every socket it accepts), before anything can block on it. ``owner``: the object
        that serves it (a Connection), found again by a graceful stop; owning a socket twice
        keeps the first owner unless a new one is given.

        Returns False if ``stop()`` has begun: then the socket is shut down at once (no
        traffic; stop() still closes it), or closed if stop() has closed the others already.
        """
        with self._lock:
            if self._closed:
                sock.close()
                return False
            if owner is not None or sock not in self._open:
                self._open[sock] = owner
            if self._stop_began:
                shutdown_quietly(sock)
                return False
        return True

    def track(self, sock: socket.socket, owner: object = None) -> int:
        """Note a connection: its buffer sizes, :meth:`own`, an ACCEPT event; returns its id.

        ``owner``: the object that serves it (a Connection), found again by a graceful stop.
        Once ``stop()`` has begun the socket is shut down at once (see :meth:`own`): every
        ``recv()`` on it returns ``b''``, every ``send()`` fails.
        """
        self.set_buffer_sizes(sock)
        self.own(sock, owner)
        cid = self.new_conn_id()
        self.events.record(ACCEPT, cid)
        return cid

    def forget(self, sock: socket.socket) -> None:
        """No longer close ``sock`` at ``stop()`` (it is being closed now, by its owner)."""
        with self._lock:
            self._open.pop(sock, None)

    def close_connection(self, sock: socket.socket, cid: int | None, reason: str) -> None:
        """Close an accepted socket and record why.

        During a graceful stop a blocking socket (``blocking`` and ``threads`` models) is
        closed the polite way, see :func:`close_politely`.
        """
        if self.in_grace_period and self._grace_until is not None and sock.gettimeout() != 0.0:
            close_politely(sock, self._grace_until)
        self.forget(sock)
        sock.close()
        self.events.record(CLOSE, cid, detail=reason)

    def start_thread(self, thread: threading.Thread) -> bool:
        """Start ``thread`` (one that serves clients) and have ``stop()`` join it.

        Returns False, and does not start it, once ``stop()`` has begun. Raises what
        ``thread.start()`` raises (RuntimeError when no thread can be started).
        """
        with self._lock:  # stop() cannot begin between the check and the start
            if self._stop_began:
                return False
            self._threads = {t for t in self._threads if t.is_alive()}
            thread.start()  # returns once the thread runs; it does not need the lock for that
            self._threads.add(thread)
        return True

    def count_refusal(self, why: str) -> None:
        """Count a client turned away; ``why`` is a short reason (see :meth:`refusals`).

        Counted even without ``record_events``, so that ``serve`` can report them."""
        with self._lock:
            self._refused[why] += 1

    def wait_for_client(self) -> bool:
        """Block until a client is waiting to be accepted; False if asked to stop instead.

        The blocking models use this before ``accept()`` so that ``stop()`` can wake them
        through the socketpair (a bare blocking ``accept()`` could only be woken by a client).
        """
        import select  # local: this is the only use in the blocking models' path

        while not self.stopping:
            readable, _, _ = select.select([self.listener, self.waker], [], [])
            if self.listener in readable and not self.stopping:
                return True
        return False

    @property
    def waker(self) -> socket.socket:
        """The read end of the socketpair that ``stop()`` writes to: add it to a select set."""
        if self._waker_r is None:
            raise RuntimeError("the server is not started: call start() first")
        return self._waker_r

    def drain_waker(self) -> None:
        """Consume the wake-up bytes (call when :attr:`waker` is readable)."""
        try:
            while self.waker.recv(1024):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    # ------------------------------------------------------------------ internals
    def _wake(self) -> None:
        try:
            if self._waker_w is not None:
                self._waker_w.send(b"\0")
        except OSError:
            pass  # already full of wake-ups (BlockingIOError), or already closed

    def _run(self) -> None:
        self.cpu.enter()
        try:
            self.serve()
            if self.in_grace_period:
                self.finish_replies()
        except BaseException as exc:  # keep it for stop() to re-raise in the caller's thread
            self.error = exc
            self.events.record(ERROR, detail=f"{type(exc).__name__}: {exc}")
        finally:
            self.cpu.exit()

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._open = list(self._open), {}
            self._closed = True
        for sock in sockets:
            sock.close()
        for end in (self._listener, self._waker_r, self._waker_w):
            if end is not None:
                end.close()


def close_politely(sock: socket.socket, deadline: float) -> None:
    """End a blocking connection without losing the end of the reply (graceful stops).

    Closing a socket that still has unread input makes the kernel reset the connection, and a
    reset throws away whatever the peer has not yet received of the reply. So: send our EOF
    (``shutdown(SHUT_WR)``), then read and drop what the peer still sends until its EOF (it
    has everything then) or ``deadline`` (``time.monotonic()``); the caller then closes.
    """
    try:
        sock.shutdown(socket.SHUT_WR)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(RECV_SIZE):
                return
    except OSError:  # reset, timed out: nothing more to do politely
        pass


def shutdown_quietly(sock: socket.socket) -> None:
    """``shutdown(SHUT_RDWR)`` ignoring "not connected": wakes a thread blocked in recv()."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.005) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` seconds pass; returns its last value.

    For tests and notebooks that wait for a background server to reach a state.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return bool(value)
        time.sleep(interval)


__all__ = [
    "HIGH_WATER",
    "LOOPBACK",
    "RECV_SIZE",
    "STOPPED_BY_STOP",
    "Server",
    "ServerStopTimeout",
    "ServerStoppedError",
    "close_politely",
    "is_loopback",
    "shutdown_quietly",
    "wait_until",
]
