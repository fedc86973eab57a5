"""Non-blocking calls that wait when they must: try once; on ``BlockingIOError`` wait for
readiness; retry.

Every client of the package that is not itself a lesson does its socket calls this way, the
way trio's sockets do (``trio/_socket.py``, ``_nonblocking_helper``), here without an event
loop: the wait is a ``select()`` on the one socket, or the caller's own selector loop over
many sockets.

Why this order:

* **Try first.** A non-blocking ``send()`` or ``recv()`` usually succeeds at once (there is
  room in the send buffer, or bytes are already queued), and asking for readiness first would
  cost a system call (an ``epoll_wait``, ``poll`` or ``select``) on every call. So wait only
  once the call has said it would block.
* **Readiness is a hint, so loop.** "Readable" or "writable" can be spurious: another thread
  took the bytes, a checksum failed, the buffer filled again. The call after the wait may
  raise ``BlockingIOError`` again; then wait again.
* **A deadline bounds the wait.** It is a ``time.monotonic()`` value, so a caller that makes
  many calls bounds them all at once; past it, ``TimeoutError``.
* ``InterruptedError`` (``EINTR``) is not handled here: since Python 3.5 the socket methods
  and ``select()``/``epoll.poll()`` retry it themselves (PEP 475), recomputing their
  timeout; a signal handler that raises (``KeyboardInterrupt``) ends the wait, as it should.
  (``selectors`` would return an empty list on one: :meth:`Readiness.wait` then waits again
  until the deadline.)

Usage::

    sock.setblocking(False)
    deadline = time.monotonic() + 5.0
    sent = when_ready(sock, WRITE, sock.send, data, deadline=deadline)     # bytes taken
    reply = when_ready(sock, READ, sock.recv, 4096, deadline=deadline)     # b"" at EOF

    with Readiness(sock) as ready:          # many calls on one socket: one selector for all
        while view:
            view = view[ready.call(WRITE, sock.send, view, deadline=deadline):]

    # in a selector loop over many sockets, the loop's select() is the wait:
    chunk = attempt(sock.recv, 65536)
    if chunk is None:
        continue            # it would block: wait for the next readiness report
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["READ", "WRITE", "Readiness", "attempt", "when_ready"]

T = TypeVar("T")

READ = selectors.EVENT_READ
"""Wait until the socket is readable (bytes queued, EOF, an error, or a connection to accept)."""
WRITE = selectors.EVENT_WRITE
"""Wait until the socket is writable (room in its send buffer, or a connect() finished)."""


def attempt(call: Callable[..., T], *args: Any) -> T | None:
    """Try a non-blocking call once.

    Parameters
    ----------
    call:
        A socket method that may raise ``BlockingIOError``, such as ``sock.send`` or
        ``sock.recv``. It must not return None itself.
    args:
        Its arguments.

    Returns
    -------
    What ``call(*args)`` returned, or None if it raised ``BlockingIOError``: then wait for the
    socket's readiness (a selector loop's next ``select()``) and try again. Any other error
    propagates.
    """
    try:
        return call(*args)
    except BlockingIOError:
        return None


class Readiness:
    """Waits for one socket's readiness, with one selector kept for all its waits.

    Parameters
    ----------
    sock:
        A non-blocking socket. It is not closed by :meth:`close`.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._selector: selectors.BaseSelector | None = None

    def wait(self, events: int, deadline: float | None = None) -> int:
        """Wait until the socket is ready for ``events`` (:data:`READ`, :data:`WRITE`, or
        both); return the events it is ready for.

        Raises ``TimeoutError`` if ``deadline`` (``time.monotonic()``; None: no limit) passes
        first.
        """
        if self._selector is None:
            self._selector = selectors.DefaultSelector()
            self._selector.register(self.sock, events)
        elif self._selector.get_key(self.sock).events != events:
            self._selector.modify(self.sock, events)
        while True:
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                raise TimeoutError("the socket did not become ready in time")
            ready = self._selector.select(timeout)
            if ready:
                return ready[0][1]

    def call(
        self, events: int, call: Callable[..., T], *args: Any, deadline: float | None = None
    ) -> T:
        """Try ``call(*args)``; while it raises ``BlockingIOError``, wait until the socket is
        ready for ``events`` and try again.

        Parameters
        ----------
        events:
            What the call needs: :data:`READ` for ``recv()`` and ``accept()``, :data:`WRITE`
            for ``send()``.
        call, args:
            The non-blocking call and its arguments.
        deadline:
            A ``time.monotonic()`` value after which to stop waiting; None waits as long as it
            takes.

        Returns
        -------
        What the call returned. Raises ``TimeoutError`` at the deadline, and whatever else
        the call raises.
        """
        while True:
            try:
                return call(*args)
            except BlockingIOError:
                pass
            self.wait(events, deadline)

    def close(self) -> None:
        """Close the selector (not the socket). Idempotent."""
        if self._selector is not None:
            self._selector.close()
            self._selector = None

    def __enter__(self) -> Readiness:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def when_ready(
    sock: socket.socket,
    events: int,
    call: Callable[..., T],
    *args: Any,
    deadline: float | None = None,
) -> T:
    """One call of :meth:`Readiness.call`: try ``call(*args)``; on ``BlockingIOError`` wait
    until ``sock`` (non-blocking: ``sock.setblocking(False)``) is ready for ``events``
    (before ``deadline``) and retry.

    A selector is created only if the first try would block. Returns what the call returned;
    raises ``TimeoutError`` at the deadline.
    """
    result = attempt(call, *args)
    if result is not None:
        return result
    with Readiness(sock) as ready:
        ready.wait(events, deadline)
        return ready.call(events, call, *args, deadline=deadline)
