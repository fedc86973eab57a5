"""When a command cannot write its output, it ends quietly, as Unix tools do.

``nbio load | head -1``: ``head`` exits after one line, and the next write to the pipe fails
with EPIPE (Python ignores SIGPIPE, so it is a ``BrokenPipeError``). ``nbio load > /dev/full``:
a write fails with ENOSPC. Neither is the command's fault, and neither deserves a traceback:
a broken pipe ends the command with exit 0, any other output error with one line on stderr
and exit 1.

Only errors of *output* are meant: a command that catches ``OSError`` for its sockets must not
catch these, and a socket's own ``BrokenPipeError`` must not be mistaken for one. So inside
:func:`guarded_output`, ``sys.stdout`` and ``sys.stderr`` are wrapped, and an error while
writing to them is raised as :class:`OutputError`, which is not an ``OSError``::

    with guarded_output() as guard:
        code = command()
    if guard.failure is not None:
        code = guard.failure_exit_code()   # 0 for a broken pipe, 1 (and one line) otherwise
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys


class OutputError(Exception):
    """Writing to ``stream`` (``"stdout"`` or ``"stderr"``) failed with ``error`` (OSError)."""

    def __init__(self, stream: str, error: OSError):
        super().__init__(f"cannot write to {stream}: {error.strerror or error}")
        self.stream = stream
        self.error = error

    @property
    def broken_pipe(self) -> bool:
        """True if the reader went away (EPIPE), as ``head`` does once it has enough."""
        return isinstance(self.error, BrokenPipeError) or self.error.errno == errno.EPIPE


class GuardedStream:
    """A stream whose write errors are raised as :class:`OutputError`; the rest is the
    wrapped stream's (``isatty()``, ``fileno()``, ``encoding``...). ``.buffer`` is guarded too."""

    def __init__(self, stream, name: str):
        self._stream = stream
        self._name = name

    def write(self, data):
        return self._guard(self._stream.write, data)

    def writelines(self, lines):
        return self._guard(self._stream.writelines, lines)

    def flush(self):
        return self._guard(self._stream.flush)

    @property
    def buffer(self):
        raw = getattr(self._stream, "buffer", None)
        return None if raw is None else GuardedStream(raw, self._name)

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def _guard(self, method, *args):
        try:
            return method(*args)
        except OSError as exc:
            raise OutputError(self._name, exc) from None
        except ValueError:  # "I/O operation on closed file": that output is gone
            raise OutputError(self._name, OSError(errno.EPIPE, "closed")) from None


class Guard:
    """What :func:`guarded_output` yields: ``failure`` is the OutputError that ended it."""

    def __init__(self):
        self.failure: OutputError | None = None

    def failure_exit_code(self, prog: str) -> int:
        """0 for a broken pipe; otherwise one line on stderr (if it works) and 1."""
        failure = self.failure
        if failure is None:
            raise RuntimeError("failure_exit_code() called without a failure")
        if failure.broken_pipe:
            return 0
        if failure.stream != "stderr":
            try:
                print(f"{prog}: {failure}", file=sys.stderr, flush=True)
            except (OSError, ValueError):
                pass
        return 1


@contextlib.contextmanager
def guarded_output():
    """Wrap ``sys.stdout``/``sys.stderr`` (see :class:`GuardedStream`) for the block; an
    :class:`OutputError` ends the block quietly and is kept on the yielded :class:`Guard`.

    Also flushes stdout at the end, so that an error of the last write is caught here, and
    points a failed stream at the null device: the interpreter's own flush at exit then
    succeeds instead of printing "Exception ignored ... BrokenPipeError".
    """
    guard = Guard()
    streams = {"stdout": sys.stdout, "stderr": sys.stderr}
    sys.stdout = GuardedStream(streams["stdout"], "stdout")
    sys.stderr = GuardedStream(streams["stderr"], "stderr")
    try:
        try:
            yield guard
        finally:
            sys.stdout.flush()
    except OutputError as exc:
        guard.failure = exc
        _silence(streams[exc.stream])
    finally:
        sys.stdout, sys.stderr = streams["stdout"], streams["stderr"]


def _silence(stream) -> None:
    """Point ``stream``'s descriptor at the null device (what is still buffered goes there)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (tests capture output in memory)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


__all__ = ["GuardedStream", "OutputError", "guarded_output"]
