"""The terminal client: send each line you type (or pipe in), print each reply.

Usage from a shell::

    python -m nbio_helpers client --port 8080          # type lines; end of input ends
    printf 'hello\\nworld\\n' | python -m nbio_helpers client --port 8080

and from Python::

    exit_code = terminal_client(("127.0.0.1", 8080))

One connection for the whole session. Each line is sent with its newline, and its echo is
printed as it comes (the echo protocol keeps the length, so the output is the input
upper-cased, byte for byte); the next prompt waits until the whole echo is in. End of input
ends the session cleanly (exit 0): Ctrl-D at the start of a line on Linux and macOS,
Ctrl-Z then Enter on Windows (:data:`END_OF_INPUT`); the prompt says which.
A refused, dropped or silent connection is reported in one line on stderr (exit 1).

The client reads while it sends, on a non-blocking socket watched by a selector, and holds
at most a chunk of input at a time: a line of any length (50 MB, say) comes back whole in
bounded memory. Sending a long line first and reading its echo afterwards would deadlock:
the server stops reading while its replies are not read, and this client would stop reading
while the server does not read.
"""

from __future__ import annotations

import codecs
import socket
import sys
import time

from nbio_helpers.addresses import format_address
from nbio_helpers.clients import connect
from nbio_helpers.nonblocking import READ, WRITE, Readiness, attempt

PROMPT = "> "
CHUNK = 64 * 1024
"""The most input read, or echo received, at a time."""

END_OF_INPUT = "Ctrl-Z then Enter" if sys.platform == "win32" else "Ctrl-D"
"""The keys that end a terminal's input on this OS."""


def terminal_client(
    address,
    *,
    timeout: float = 5.0,
    stdin=None,
    stdout=None,
    stderr=None,
    prompt: bool | None = None,
) -> int:
    """Run the terminal client against ``address``; return the exit code (0 ok, 1 failure).

    Parameters
    ----------
    address:
        ``(host, port)`` of an echo server.
    timeout:
        Seconds to wait for the connection, and for the server to go on reading or replying.
    stdin, stdout, stderr:
        Text streams (default: the process's own). Input is read from ``stdin.buffer`` and
        the echo written to ``stdout.buffer`` when they have one, so bytes that are not UTF-8
        go through unchanged.
    prompt:
        Show a ``"> "`` prompt before each line. Default: only if ``stdin`` is a terminal.
    """
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    if prompt is None:
        prompt = _isatty(stdin)
    where = format_address(address)

    try:
        sock = connect(address, timeout)
    except OSError as exc:
        print(f"nbio client: cannot connect to {where}: {connection_problem(exc)}", file=stderr)
        return 1
    if prompt:
        print(f"connected to {where}: type lines, {END_OF_INPUT} to end", file=stderr)
    with sock, EchoSession(sock, _Output(stdout), timeout) as session:
        try:
            for piece, line_ended in _pieces(stdin, stdout if prompt else None):
                session.send(piece)  # reading the echo meanwhile
                if line_ended:
                    session.wait_for_echo()  # the whole echo, before the next prompt
            session.wait_for_echo()  # a last line without a newline
        except TimeoutError:
            print(f"nbio client: no reply from {where} within {timeout:g} s", file=stderr)
            return 1
        except OSError as exc:  # ConnectionError too: reset, broken pipe, closed early
            print(
                f"nbio client: connection to {where} lost: {connection_problem(exc)}", file=stderr
            )
            return 1
        except KeyboardInterrupt:
            print(file=stderr)
            return 130
    return 0


class EchoSession:
    """Send bytes on ``sock`` while its echo is written to ``output`` as it arrives.

    :meth:`send` returns once every byte is handed to the kernel; :meth:`wait_for_echo`
    once as many bytes came back as were sent. Both raise ``TimeoutError`` if the server
    neither reads nor replies for ``timeout`` seconds, ``ConnectionError`` if it closes first.
    """

    def __init__(self, sock: socket.socket, output, timeout: float):
        sock.setblocking(False)
        self.sock = sock
        self.output = output
        self.timeout = timeout
        self.outstanding = 0  # bytes sent whose echo has not come yet
        self._ready = Readiness(sock)

    # Each call is tried first and waited for only if it would block (nbio_helpers.nonblocking).
    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            sent = attempt(self.sock.send, view)
            if sent is None:  # no room: wait for room, or for echo to read meanwhile
                self._wait(READ | WRITE)
            else:
                view = view[sent:]
                self.outstanding += sent
            self._receive()

    def wait_for_echo(self) -> None:
        while self.outstanding > 0:
            if not self._receive():
                self._wait(READ)

    def _wait(self, events: int) -> int:
        """Wait until the socket is ready for ``events``; return what it is ready for."""
        try:
            return self._ready.wait(events, time.monotonic() + self.timeout)
        except TimeoutError:
            raise TimeoutError(f"nothing happened for {self.timeout} s") from None

    def _receive(self) -> bool:
        """Write what echo has come (if any) to the output; True if some had."""
        data = attempt(self.sock.recv, CHUNK)
        if data is None:
            return False
        if not data:
            raise ConnectionError(
                f"the server closed the connection with {self.outstanding:,} "
                "bytes of echo still to come"
            )
        self.outstanding -= len(data)
        self.output.write(data)
        return True

    def close(self) -> None:
        self._ready.close()
        self.output.finish()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class _Output:
    """Echo bytes to a text stream: to its ``.buffer`` as they are, else decoded as UTF-8
    (a character split between two chunks is decoded whole)."""

    def __init__(self, stdout):
        self.stdout = stdout
        self.binary = getattr(stdout, "buffer", None)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def write(self, data: bytes) -> None:
        if self.binary is not None:
            self.stdout.flush()  # a prompt written as text goes out first
            self.binary.write(data)
            self.binary.flush()
        else:
            self.stdout.write(self._decoder.decode(data))
            self.stdout.flush()

    def finish(self) -> None:
        if self.binary is None:
            rest = self._decoder.decode(b"", final=True)
            if rest:
                self.stdout.write(rest)
                self.stdout.flush()


def _pieces(stdin, prompt_to):
    """Yield the input as ``(bytes, line_ended)``: each line in pieces of at most CHUNK bytes,
    ``line_ended`` True for the piece that ends with the newline. Prompts before each line."""
    binary = getattr(stdin, "buffer", None)
    at_line_start = True
    while True:
        if at_line_start and prompt_to is not None:
            prompt_to.write(PROMPT)
            prompt_to.flush()
        piece = (
            binary.readline(CHUNK)
            if binary is not None
            else stdin.readline(CHUNK).encode("utf-8", errors="surrogateescape")
        )
        if not piece:
            if prompt_to is not None and at_line_start:
                prompt_to.write("\n")  # leave the shell prompt on a fresh line after end of input
            return
        at_line_start = piece.endswith(b"\n")
        yield piece, at_line_start


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def connection_problem(exc: OSError) -> str:
    """A connection error in a few words: "connection refused (is the server running?)"."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(exc, ConnectionError) and not exc.strerror:
        return str(exc) or type(exc).__name__
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__


__all__ = [
    "CHUNK",
    "END_OF_INPUT",
    "PROMPT",
    "EchoSession",
    "connection_problem",
    "terminal_client",
]
