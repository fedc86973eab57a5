"""A chat client for notebook cells and tests: every call has a timeout, nothing hangs.

Usage::

    with ChatClient(server.address) as ann, ChatClient(server.address) as bob:
        ann.join("ann")                 # reads the greeting, sends the name, returns the hello
        bob.join("bob")
        bob.say("hi ann")
        ann.lines()                     # ['* bob joined', 'bob: hi ann']
"""

from __future__ import annotations

import socket
import time

from nbio_helpers.clients import OwnsSocket


class ChatClient(OwnsSocket):
    """One connection to a chat server of :mod:`nbio_helpers.loop`.

    Parameters
    ----------
    address:
        ``(host, port)`` of the server.
    timeout:
        Seconds :meth:`line` waits for a line (and ``connect()`` for the connection).
    """

    def __init__(self, address, timeout: float = 2.0):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.timeout = timeout
        self.buffer = b""
        self.closed_by_server = False

    def send(self, data: bytes) -> None:
        """Send raw bytes (for byte-by-byte or over-long lines)."""
        self.sock.sendall(data)

    def say(self, text: str) -> None:
        """Send one line of text."""
        self.sock.sendall(text.encode() + b"\n")

    def line(self, timeout: float | None = None) -> str | None:
        """The next line; None if the server closed the connection. Raises TimeoutError if
        no line comes within ``timeout`` (default: the client's)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line from the server in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                raise TimeoutError("no line from the server in time") from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed_by_server = True
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def lines(self, quiet: float = 0.2) -> list[str]:
        """Every line that arrives until none has for ``quiet`` seconds (or the end)."""
        got: list[str] = []
        while True:
            try:
                line = self.line(quiet)
            except TimeoutError:
                return got
            if line is None:
                return got
            got.append(line)

    def join(self, name: str) -> str | None:
        """Read the greeting, send ``name``; return the server's answer line (None if the
        server closed the connection)."""
        self.line()
        self.say(name)
        return self.line()


__all__ = ["ChatClient"]
