"""The client process: where every latency and throughput figure is measured from.

The servers run in background threads of the kernel (the series' design); a client in the
kernel's own process would share Python's GIL with them and distort exactly what is being
compared (busy polling looked slower than a sleeping poller). So the clients run in a
separate process, :class:`ClientProcess`, started on first use and reused::

    process = client_process()           # the shared one: started now, or the running one
    process.request("latency", timeout=10, host=host, port=port, requests=20)
    process.echo_load((host, port), EchoLoad(clients=20))   # see measure.echo.measure_load
    with process.held((host, port), 100, timeout=30, check=False):
        ...                              # 100 connections held open meanwhile
    stop_client_processes()              # what notebook.finish() does; nothing is left

Rules:

* one shared process per kernel (:func:`client_process`), started lazily (about 0.1 s), and
  restarted if it has ended (a kernel interrupt may end it);
* every request is bounded by a timeout; a request that does not complete (timeout,
  Ctrl-C, the process ended) kills the process, so that a late reply can never be taken for
  the answer to the next request: the next request starts a fresh process;
* an error in the child comes back as an exception of the same kind when it is a common
  one (``ValueError``, ``TimeoutError``, ``ConnectionError``, ``OSError``...), else as
  :class:`ClientProcessError`, with the child's message and no child traceback;
* the child ignores SIGINT and runs in its own session (``LoadProcess``): a Jupyter
  interrupt stops the cell, and the request it cut short retires the process;
* requests are serialised: a lock makes a measurement that holds connections, measures and
  releases them (several requests) atomic against another thread's (the explorer widget);
* every process is registered; :func:`stop_client_processes` stops them all (also at the
  interpreter's exit: the hook is registered with the first process, not at import), and the
  kernel ending closes the child's stdin, which ends it (after the command it is running).
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import threading
from typing import TYPE_CHECKING

from nbio_helpers.bench.worker import LoadProcess, LoadProcessError

if TYPE_CHECKING:
    from nbio_helpers.measure.echo import EchoLoad

__all__ = [
    "ClientProcess",
    "ClientProcessError",
    "client_process",
    "running_client_processes",
    "stop_client_processes",
]


class ClientProcessError(LoadProcessError):
    """The client process could not do what it was asked (its message says why)."""


# Errors re-raised as themselves: what a measurement's caller may reasonably catch.
_PASSED_THROUGH = (
    "ValueError",
    "TypeError",
    "TimeoutError",
    "OSError",
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "ConnectionAbortedError",
    "BrokenPipeError",
)

_lock = threading.Lock()
_processes: list[ClientProcess] = []
_shared: ClientProcess | None = None
_exit_hook_registered = False  # atexit: stop_client_processes(), registered with the first process


class ClientProcess(LoadProcess):
    """A :class:`~nbio_helpers.bench.worker.LoadProcess` with checked, bounded requests.

    Use :func:`client_process` for the shared one; create one yourself (a context manager)
    when a measurement needs a process of its own (the bench does).
    """

    def __init__(self):
        super().__init__()
        self.lock = threading.RLock()
        """Held for a request; hold it yourself around several requests that belong together."""
        self._retired = False
        global _exit_hook_registered
        with _lock:
            _processes.append(self)
            if not _exit_hook_registered:  # at the first process, not at import
                atexit.register(stop_client_processes)
                _exit_hook_registered = True

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        """True while the process runs and has not been closed."""
        return not self._retired and self.proc is not None and self.proc.poll() is None

    def echo_load(
        self,
        address: tuple[str, int],
        load: EchoLoad,
        *,
        keep_latencies: bool = False,
        slack: float = 30.0,
    ) -> dict:
        """Run ``load`` (an :class:`~.echo.EchoLoad`) against ``address`` in the client
        process (:func:`nbio_helpers.bench.load.echo_load`) and return its reply; wait at
        most ``load.duration + load.connect_timeout + slack`` seconds for it.
        ``keep_latencies``: the reply has every echo's latency too. To measure with it, use
        :func:`~.echo.measure_load` (the GC paused, the server's CPU time read around it).
        """
        host, port = address
        return self.request(
            "echo_load",
            timeout=load.duration + load.connect_timeout + slack,
            host=host,
            port=port,
            clients=load.clients,
            size=load.size,
            warmup=load.warmup,
            duration=load.seconds,
            connect_timeout=load.connect_timeout,
            keep_latencies=keep_latencies,
        )

    @contextlib.contextmanager
    def held(self, address: tuple[str, int], count: int, *, timeout: float, **options):
        """Hold ``count`` connections to ``address`` open in the client process for the
        ``with`` block, which yields :func:`nbio_helpers.bench.load.hold`'s reply (``options``
        are its own: ``check``, ``within``, ``connect_timeout``, ``reply_within``,
        ``stall``). Waits at most ``timeout`` seconds for them; they are closed on exit.

        The process's lock is held throughout, so that no other request (another thread's)
        runs while the connections are open.
        """
        host, port = address
        with self.lock:
            reply = self.request(
                "hold", timeout=timeout, host=host, port=port, count=count, **options
            )
            try:
                yield reply
            finally:
                # Not after an interrupt that ended the process: the interrupt must show, not
                # this (the next request starts a new process, without the connections).
                if self.alive:
                    self.request("release", timeout=timeout)

    def request(self, cmd: str, *, timeout: float, **args) -> dict:
        """Run ``cmd`` in the client process and return its reply (a dict).

        Raises ``TimeoutError`` if no reply comes within ``timeout`` seconds (the process is
        then killed), :class:`ClientProcessError` if the process has ended or fails the
        command, or the child's own exception type for common errors (see the module).
        """
        with self.lock:
            if not self.alive:
                raise ClientProcessError(f"the client process has ended{self._exit_note()}")
            completed = False
            try:
                reply = self.call(cmd, timeout=timeout, **args)
                completed = True
            except TimeoutError:
                raise TimeoutError(
                    f"the client process did not finish {cmd!r} within "
                    f"{timeout:g} s (stopped; the next request starts a new "
                    "one)"
                ) from None
            except LoadProcessError:  # a broken or closed pipe: the process is gone
                raise ClientProcessError(
                    f"the client process has ended{self._exit_note()}"
                ) from None
            finally:
                if not completed:  # timeout, Ctrl-C, broken pipe: never reuse it
                    self.kill()
            error = reply.get("error")
            if error is None:
                return reply
            ended = self.proc is None or self.proc.poll() is not None
            if ended or error == "the load process ended":
                self.kill()
                raise ClientProcessError(
                    f"the client process ended during {cmd!r}{self._exit_note()}"
                )
        raise _child_exception(cmd, error)

    def kill(self) -> None:
        """Kill the process at once and release its pipes (no questions asked)."""
        self._retired = True
        if self.proc is not None:
            try:
                self.proc.kill()
            except OSError:
                pass
        self.close()

    def close(self) -> None:
        """Ask the process to quit (kill it if it does not), wait for it, unregister it."""
        self._retired = True
        try:
            super().close()
        finally:
            with _lock:
                if self in _processes:
                    _processes.remove(self)

    def __exit__(self, exc_type, *exc):
        try:
            super().__exit__(exc_type, *exc)
        finally:
            self.close()  # unregister (the process itself is already gone)

    def _exit_note(self) -> str:
        code = self.proc.poll() if self.proc is not None else None
        return "" if code is None else f" (exit code {code})"

    def __repr__(self) -> str:
        return f"<ClientProcess pid={self.pid} {'running' if self.alive else 'ended'}>"


def _child_exception(cmd: str, error: str) -> Exception:
    """The exception to raise for the child's ``{"error": "Type: message"}``."""
    kind, sep, message = error.partition(": ")
    if sep and kind in _PASSED_THROUGH:
        return getattr(builtins, kind)(f"{message} (in the client process, {cmd!r})")
    return ClientProcessError(f"the client process could not run {cmd!r}: {error}")


def client_process() -> ClientProcess:
    """The shared client process of this kernel: the running one, or a new one."""
    global _shared
    with _lock:
        shared = _shared
    if shared is not None and shared.alive:
        return shared
    if shared is not None:
        shared.kill()  # ended under us: release what is left
    fresh = ClientProcess()
    with _lock:
        _shared = fresh
    return fresh


def running_client_processes() -> list[ClientProcess]:
    """The client processes still running (the shared one and any made directly)."""
    with _lock:
        processes = list(_processes)
    return [p for p in processes if p.proc is not None and p.proc.poll() is None]


def stop_client_processes() -> int:
    """Stop every client process; return how many were running. Never raises."""
    global _shared
    with _lock:
        processes, _shared = list(_processes), None
    stopped = 0
    for process in processes:
        stopped += process.proc is not None and process.proc.poll() is None
        try:
            process.close()
        except Exception:
            try:
                process.kill()
            except Exception:
                pass
    return stopped
