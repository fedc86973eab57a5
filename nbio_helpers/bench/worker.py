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
"""
from __future__ import annotations

import functools
import json
import queue
import socket
import subprocess
import sys
import threading

from ..limits import fd_limit
from .load import bulk_send, echo_load, hold, sequential_echo


def worker_main() -> None:
    """The load process: read one JSON command a line from stdin, answer one JSON line."""
    try:
        _serve_commands()
    except KeyboardInterrupt:
        pass  # Ctrl-C reaches the whole process group: the bench process reports it


def _serve_commands() -> None:
    held: list[socket.socket] = []
    commands = {
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
        code = "from nbio_helpers.bench.worker import worker_main; worker_main()"
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self._replies: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="bench-load-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._replies.put(json.loads(line))
        self._replies.put({"error": "the load process ended"})

    def send(self, cmd: str, **args) -> None:
        """Send a command without waiting for its reply (see :meth:`reply`)."""
        self.proc.stdin.write(json.dumps({"cmd": cmd, "args": args}) + "\n")
        self.proc.stdin.flush()

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
        try:
            self.send("quit")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        self.proc.stdin.close()
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
