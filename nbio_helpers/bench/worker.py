"""The load process: the benchmark's clients run in a process of their own.

So they neither compete with the servers for this process's GIL nor share its descriptor
table. The bench talks to it over its stdin/stdout, one JSON object a line: a command
``{"cmd": "echo_load", "args": {...}}`` in, its reply (a dict) out. A command that fails
replies ``{"error": "..."}``; the load process carries on::

    with LoadProcess() as load:
        load.call("ping")                                   # {'pong': True, 'fd_limit': ...}
        load.call("latency", host=host, port=port, requests=50, trials=3)  # load.sequential_echo
        load.call("echo_load", host=host, port=port, clients=100, size=64,
                  warmup=0.3, duration=1.2)                  # see load.echo_load
        load.call("hold", host=host, port=port, count=300)  # connections kept open...
        load.call("release")                                # ... until released

Ctrl-C cannot leave it behind: the load process runs in a process group of its own (the
terminal's Ctrl-C, or a Jupyter interrupt, reaches only the bench), ignores SIGINT from the
first line of its code, and ends when it is told to, when its input closes, or when it is
killed: starting and closing are critical sections (:mod:`nbio_helpers.interrupts`), and
leaving the ``with`` block by an exception kills it at once rather than waiting for the
command it is running.
"""

from __future__ import annotations

import functools
import json
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

from nbio_helpers.bench.load import bulk_send, echo_load, hold, sequential_echo
from nbio_helpers.interrupts import interrupts_deferred
from nbio_helpers.limits import fd_limit

WORKER_CODE = (
    "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "from nbio_helpers.bench.worker import worker_main; worker_main()"
)
"""What the load process runs: SIGINT ignored first (the bench decides when it ends)."""


class LoadProcessError(RuntimeError):
    """The load process is gone: a command could not be sent to it."""


def worker_main() -> None:
    """The load process: read one JSON command a line from stdin, answer one JSON line."""
    try:
        _serve_commands()
    except KeyboardInterrupt:
        pass  # Ctrl-C reaches the whole process group: the bench process reports it


def _serve_commands() -> None:
    held: list[socket.socket] = []
    commands: dict[str, Callable[..., dict]] = {
        "echo_load": echo_load,
        "latency": sequential_echo,
        "hold": functools.partial(hold, held),
        "release": functools.partial(_release, held),
        "bulk_send": bulk_send,
        "ping": lambda: {"pong": True, "fd_limit": fd_limit()},
    }
    try:
        for line in sys.stdin:
            request = json.loads(line)
            cmd, args = request["cmd"], request.get("args", {})
            if cmd == "quit":
                break
            command = commands.get(cmd)
            try:
                reply = command(**args) if command else {"error": f"unknown command {cmd!r}"}
            except Exception as exc:  # report, never die: the bench process decides
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    finally:
        _release(held)


def _release(held: list) -> dict:
    """Close every connection kept by ``hold``."""
    reply = {"released": len(held)}
    for sock in held:
        sock.close()
    held.clear()
    return reply


class LoadProcess:
    """The bench's handle on the load process: ``call("echo_load", ...)`` -> dict."""

    def __init__(self):
        self.proc: subprocess.Popen[str] | None = None  # set unless starting it failed
        self._reader: threading.Thread | None = None
        self._closed = False
        self._replies: queue.Queue = queue.Queue()
        with interrupts_deferred() as interrupted:
            try:
                self.proc = subprocess.Popen(
                    [sys.executable, "-c", WORKER_CODE],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    bufsize=1,
                    **_own_process_group(),
                )
                self._reader = threading.Thread(
                    target=self._read, name="bench-load-reader", daemon=True
                )
                self._reader.start()
            except BaseException:
                self._shutdown(polite=False)
                raise
            if interrupted.pending:  # raised when the block ends, once it is gone
                self._shutdown(polite=False)

    def _started(self) -> subprocess.Popen[str]:
        """The process; raises :class:`LoadProcessError` if it could not be started."""
        if self.proc is None:
            raise LoadProcessError("the load process did not start")
        return self.proc

    def _read(self) -> None:
        stdout = self._started().stdout
        assert stdout is not None  # stdout=PIPE
        try:
            for line in stdout:
                self._replies.put(json.loads(line))
        except (OSError, ValueError):  # closed under us, or a line that is not JSON
            pass
        self._replies.put({"error": "the load process ended"})

    def send(self, cmd: str, **args) -> None:
        """Send a command without waiting for its reply (see :meth:`reply`).

        Raises :class:`LoadProcessError` if the load process is gone.
        """
        stdin = self._started().stdin
        assert stdin is not None  # stdin=PIPE
        try:
            stdin.write(json.dumps({"cmd": cmd, "args": args}) + "\n")
            stdin.flush()
        except (OSError, ValueError) as exc:  # broken pipe, or closed
            raise LoadProcessError(f"the load process is gone ({type(exc).__name__})") from None

    def reply(self, timeout: float) -> dict:
        """The next reply; raises TimeoutError if none comes within ``timeout`` seconds."""
        try:
            return self._replies.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"the load process did not answer within {timeout} s") from None

    def call(self, cmd: str, timeout: float = 60.0, **args) -> dict:
        """Send a command and wait for its reply."""
        self.send(cmd, **args)
        return self.reply(timeout)

    def close(self) -> None:
        """Ask the load process to quit (kill it if it does not), and wait for it."""
        self._shutdown(polite=True)

    def _shutdown(self, polite: bool) -> None:
        """End the process (asked to quit, or killed), join the reader, close the pipes.
        Idempotent; cannot be cut short by Ctrl-C."""
        with interrupts_deferred():
            if self._closed or self.proc is None:
                self._closed = True
                return
            self._closed = True
            if polite:
                try:
                    self.send("quit")
                    self.proc.wait(timeout=10)
                except (LoadProcessError, subprocess.TimeoutExpired):
                    pass
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if self._reader is not None:
                self._reader.join(timeout=5)
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is None:
                    continue
                try:
                    pipe.close()
                except OSError:  # what was buffered for a dead process
                    pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        # Leaving by an exception (Ctrl-C): kill it now, not after its current command.
        self._shutdown(polite=exc_type is None)


def _own_process_group() -> dict:
    """Popen options that keep the terminal's Ctrl-C (and a Jupyter interrupt, which signals
    the kernel's process group) away from the load process."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


__all__ = ["WORKER_CODE", "LoadProcess", "LoadProcessError", "worker_main"]
