"""The terminal client: send each line you type (or pipe in), print each reply.

Usage from a shell::

    python -m nbio_helpers client --port 8080          # type lines; end of input ends
    printf 'hello\\nworld\\n' | python -m nbio_helpers client --port 8080

and from Python::

    exit_code = terminal_client(("127.0.0.1", 8080))

One connection for the whole session. Each line is sent with its newline, and the reply is
read until as many bytes came back as were sent (the echo protocol keeps the length), so the
output is the input upper-cased, byte for byte. End of input ends the session cleanly (exit 0):
Ctrl-D at the start of a line on Linux and macOS, Ctrl-Z then Enter on Windows
(:data:`END_OF_INPUT`); the prompt says which.
A refused, dropped or silent connection is reported in one line on stderr (exit 1).
"""
from __future__ import annotations

import socket
import sys

from .clients import connect, recv_exactly

PROMPT = "> "

END_OF_INPUT = "Ctrl-Z then Enter" if sys.platform == "win32" else "Ctrl-D"
"""The keys that end a terminal's input on this OS."""


def terminal_client(address, *, timeout: float = 5.0, stdin=None, stdout=None, stderr=None,
                    prompt: bool | None = None) -> int:
    """Run the terminal client against ``address``; return the exit code (0 ok, 1 failure).

    Parameters
    ----------
    address:
        ``(host, port)`` of an echo server.
    timeout:
        Seconds to wait for the connection and for each reply.
    stdin, stdout, stderr:
        Text streams (default: the process's own). Lines are read from ``stdin.buffer`` when it
        has one, so bytes that are not UTF-8 go through unchanged.
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
        print(f"nbio client: cannot connect to {where}: {_reason(exc)}", file=stderr)
        return 1
    if prompt:
        print(f"connected to {where}: type lines, {END_OF_INPUT} to end", file=stderr)
    with sock:
        try:
            for line in _lines(stdin, stdout if prompt else None):
                sock.sendall(line)
                _write(stdout, recv_exactly(sock, len(line), timeout))
        except TimeoutError:
            print(f"nbio client: no reply from {where} within {timeout} s", file=stderr)
            return 1
        except OSError as exc:  # ConnectionError too: reset, broken pipe, closed early
            print(f"nbio client: connection to {where} lost: {_reason(exc)}", file=stderr)
            return 1
        except KeyboardInterrupt:
            print(file=stderr)
            return 130
    return 0


def format_address(address) -> str:
    """``HOST:PORT``, with brackets around an IPv6 host: ``[::1]:8080``."""
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _lines(stdin, prompt_to):
    """Yield each input line as bytes, newline included; stops at end of input."""
    binary = getattr(stdin, "buffer", None)
    while True:
        if prompt_to is not None:
            prompt_to.write(PROMPT)
            prompt_to.flush()
        line = binary.readline() if binary is not None else stdin.readline().encode()
        if not line:
            if prompt_to is not None:
                prompt_to.write("\n")   # leave the shell prompt on a fresh line after end of input
            return
        yield line


def _write(stdout, data: bytes) -> None:
    binary = getattr(stdout, "buffer", None)
    if binary is not None:
        stdout.flush()
        binary.write(data)
        binary.flush()
    else:
        stdout.write(data.decode("utf-8", errors="replace"))
        stdout.flush()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(exc, ConnectionError) and not exc.strerror:
        return str(exc) or type(exc).__name__
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__
