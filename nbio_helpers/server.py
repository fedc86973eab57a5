"""The server lifecycle, written once: every model inherits it.

A model only writes :meth:`Server.serve`, the loop. Everything around the loop lives here:
binding (``127.0.0.1``, port 0 = a free port), the background daemon thread, the event log,
CPU accounting, waking the loop through a socketpair when asked to stop, joining, closing every
socket, and re-raising whatever killed the loop.

Usage::

    with SelectServer() as server:        # started, bound to 127.0.0.1:<free port>
        request(server.address, b"hi")    # -> b"HI"
    # stopped: thread joined, every socket closed

    server = SelectServer(name="demo").start()   # same name again stops this one first
    server.stop(); server.stop()                  # idempotent
"""
from __future__ import annotations

import ipaddress
import itertools
import socket
import threading
import time
import warnings

from . import registry
from .cpu import ThreadCPU
from .events import ACCEPT, CLOSE, ERROR, EventLog
from .limits import ensure_fd_room

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
    except ValueError:   # a host name, or "" (every interface)
        return False

_unnamed = itertools.count(1)


class ServerStopTimeout(RuntimeError):
    """The server thread did not end within the time ``stop()`` allowed."""


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
        Backpressure threshold in bytes of pending output per connection.
    recv_size:
        How many bytes one ``recv()`` asks for.
    sock_buffer_size:
        If given, ``SO_SNDBUF`` and ``SO_RCVBUF`` (bytes) of every accepted socket: small
        kernel buffers make partial sends happen (tests, demos). None = the OS default.
    """

    model = "base"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, name: str | None = None,
                 backlog: int = 1024, record_events: bool = True,
                 high_water: int = HIGH_WATER, recv_size: int = RECV_SIZE,
                 sock_buffer_size: int | None = None):
        self.host = host
        self.port = port
        self.name = name or f"{self.model}-{next(_unnamed)}"
        self.backlog = backlog
        self.high_water = high_water
        self.recv_size = recv_size
        self.sock_buffer_size = sock_buffer_size
        self.events = EventLog(enabled=record_events)
        self.cpu = ThreadCPU()
        if self.cpu.needs_samples:   # e.g. macOS: each event recorded also reports the CPU used
            self.events.on_record = self.cpu.sample
        self.error: BaseException | None = None
        self.listener: socket.socket | None = None
        self._waker_r: socket.socket | None = None
        self._waker_w: socket.socket | None = None
        self._stop_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._error_raised = False
        self._conn_ids = itertools.count(1)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Server":
        """Bind, listen and start the loop in a daemon thread. Returns ``self``."""
        if self._thread is not None:
            raise RuntimeError(f"server {self.name!r} was already started")
        if not is_loopback(self.host):
            warnings.warn(f"{self.host} is not a loopback address: this server is reachable "
                          "from the network", stacklevel=2)
        registry.stop_named(self.name)  # first, so a fixed port is free again
        ensure_fd_room(self.backlog)    # room for as many clients as may wait (macOS: 256)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.listener = socket.create_server((self.host, self.port), family=family,
                                             backlog=self.backlog)
        # Accepted sockets inherit the listener's buffer sizes (also those asyncio accepts).
        self.set_buffer_sizes(self.listener)
        self._waker_r, self._waker_w = socket.socketpair()
        self._waker_r.setblocking(False)
        self._waker_w.setblocking(False)
        registry.register(self)
        self._thread = threading.Thread(target=self._run, name=f"nbio-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop, join its thread(s), close every socket. Safe to call twice.

        Raises the exception that killed the loop, if any (once; it stays on ``.error``),
        and :class:`ServerStopTimeout` if the thread does not end within ``timeout``.
        """
        if self._thread is None or self._stopped:
            return
        self._stop_requested.set()
        self._wake()
        self.on_stop()
        self._thread.join(timeout)
        alive = self._thread.is_alive()
        self._join_workers(timeout)
        self._close_all()
        self._stopped = True
        registry.unregister(self)
        if alive:
            raise ServerStopTimeout(f"server {self.name!r} did not stop within {timeout} s")
        if self.error is not None and not self._error_raised:
            self._error_raised = True
            raise self.error

    def __enter__(self) -> "Server":
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` to connect to."""
        if self.listener is None:
            raise RuntimeError("the server is not started: call start() first")
        host, port = self.listener.getsockname()[:2]
        return host, port

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` was called: the loop must return soon."""
        self.cpu.sample()   # every loop checks this each turn: where CPU time is self-reported
        return self._stop_requested.is_set()

    @property
    def running(self) -> bool:
        """True while the loop's thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def cpu_time(self) -> float:
        """CPU seconds used so far by this server's own thread(s)."""
        return self.cpu.total()

    def __repr__(self) -> str:
        state = "running" if self.running else ("stopped" if self._stopped else "not started")
        return f"<{type(self).__name__} {self.name!r} {state}>"

    # ------------------------------------------------------------- for the models
    def serve(self) -> None:
        """The loop. Runs in the server thread; must return soon after :attr:`stopping`."""
        raise NotImplementedError

    def on_stop(self) -> None:
        """Hook: called by ``stop()`` after waking the loop (e.g. to unblock workers)."""

    def _join_workers(self, timeout: float) -> None:
        """Hook: join extra threads (the ``threads`` model)."""

    def new_conn_id(self) -> int:
        """A small integer naming a connection in the event log."""
        return next(self._conn_ids)

    def set_buffer_sizes(self, sock: socket.socket) -> None:
        """Apply ``sock_buffer_size`` (if any) to ``sock``'s kernel send and receive buffers."""
        if self.sock_buffer_size is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sock_buffer_size)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.sock_buffer_size)

    def track(self, sock: socket.socket) -> int:
        """Note an accepted socket (so ``stop()`` closes it); returns its connection id."""
        self.set_buffer_sizes(sock)
        with self._open_lock:
            self._open.add(sock)
        cid = self.new_conn_id()
        self.events.record(ACCEPT, cid)
        return cid

    def close_connection(self, sock: socket.socket, cid: int | None, reason: str) -> None:
        """Close an accepted socket and record why."""
        with self._open_lock:
            self._open.discard(sock)
        sock.close()
        self.events.record(CLOSE, cid, detail=reason)

    def wait_for_client(self) -> bool:
        """Block until a client is waiting to be accepted; False if asked to stop instead.

        The blocking models use this before ``accept()`` so that ``stop()`` can wake them
        through the socketpair (a bare blocking ``accept()`` could only be woken by a client).
        """
        import select  # local: this is the only use in the blocking models' path
        while not self.stopping:
            readable, _, _ = select.select([self.listener, self._waker_r], [], [])
            if self.listener in readable and not self.stopping:
                return True
        return False

    @property
    def waker(self) -> socket.socket:
        """The read end of the socketpair that ``stop()`` writes to: add it to a select set."""
        return self._waker_r

    def drain_waker(self) -> None:
        """Consume the wake-up bytes (call when :attr:`waker` is readable)."""
        try:
            while self._waker_r.recv(1024):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    # ------------------------------------------------------------------ internals
    def _wake(self) -> None:
        try:
            self._waker_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already full of wake-ups, or already closed: the loop will see the flag

    def _run(self) -> None:
        self.cpu.enter()
        try:
            self.serve()
        except BaseException as exc:  # keep it for stop() to re-raise in the caller's thread
            self.error = exc
            self.events.record(ERROR, detail=f"{type(exc).__name__}: {exc}")
        finally:
            self.cpu.exit()

    def _close_all(self) -> None:
        with self._open_lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            sock.close()
        for sock in (self.listener, self._waker_r, self._waker_w):
            if sock is not None:
                sock.close()


def shutdown_quietly(sock: socket.socket) -> None:
    """``shutdown(SHUT_RDWR)`` ignoring "not connected": wakes a thread blocked in recv()."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def wait_until(predicate, timeout: float, interval: float = 0.005) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` seconds pass; returns its last value.

    For tests and notebooks that wait for a background server to reach a state.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return bool(value)
        time.sleep(interval)
