"""Critical sections that Ctrl-C cannot cut in half.

A ``KeyboardInterrupt`` (Ctrl-C, or a Jupyter kernel interrupt) is raised in the main thread
between any two bytecodes. Raised in the middle of starting a server, it can leave the
server's thread running with nobody holding the server (``__exit__`` is never called when
``__enter__`` did not return); raised in the middle of stopping one, it can leave sockets open
and the server registered. Inside :func:`interrupts_deferred` such a signal is noted instead,
and delivered when the block ends, once the work is done or undone::

    with interrupts_deferred() as deferred:
        start_everything()
        if deferred.pending:        # a Ctrl-C came meanwhile: undo, then it is raised
            stop_everything()
    # here the signal's previous handler runs: KeyboardInterrupt

Only the main thread receives signals, so elsewhere the block defers nothing. Only Python-level
handlers are deferred (the default one raises KeyboardInterrupt); a signal that is ignored, or
whose default action ends the process, is left alone.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import FrameType
from typing import TypeVar

T = TypeVar("T")

DEFERRABLE = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))
"""The signals a critical section holds back (where the OS has them)."""


class Deferred:
    """What :func:`interrupts_deferred` yields: the signals that arrived during the block."""

    def __init__(self) -> None:
        self.received: list[tuple[int, FrameType | None]] = []

    @property
    def pending(self) -> bool:
        """True if a signal arrived during the block (it is delivered when the block ends)."""
        return bool(self.received)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received.append((signum, frame))


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[Deferred]:
    """Hold back SIGINT and SIGTERM for the duration of the block; yields a :class:`Deferred`.

    When the block ends (normally or by an exception), the previous handlers are put back and
    each signal that arrived is handed to its handler, in order: the default SIGINT handler
    raises ``KeyboardInterrupt`` there. Blocks may be nested.
    """
    deferred = Deferred()
    if threading.current_thread() is not threading.main_thread():
        yield deferred  # signals are only ever handled in the main thread
        return
    previous: dict[int, Callable[[int, FrameType | None], object]] = {}
    try:
        for signum in DEFERRABLE:
            handler = signal.getsignal(signum)
            if callable(handler):
                previous[signum] = handler
                signal.signal(signum, deferred._note)
        yield deferred
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum, frame in deferred.received:
            previous[signum](signum, frame)


def uninterruptible(function: Callable[..., T], *args: object) -> T:
    """Run ``function(*args)`` to the end, however Ctrl-C falls; then raise the interrupt.

    Inside :func:`interrupts_deferred`, and again if an interrupt came just before the critical
    section began (while the handlers were being swapped). An interrupt raised once the
    function ran (by the function itself, or delivered as the section ended) is raised again
    when this returns; ``function``'s own exceptions propagate as they are.
    """
    interrupted = None
    while True:
        began = False
        try:
            with interrupts_deferred():
                began = True
                result = function(*args)
        except KeyboardInterrupt as exc:
            interrupted = interrupted or exc
            if not began:
                continue  # it came before the function began: run it now
        break
    if interrupted is not None:
        raise interrupted
    return result


__all__ = [
    "DEFERRABLE",
    "Deferred",
    "interrupts_deferred",
    "join_interruptibly",
    "uninterruptible",
]


def join_interruptibly(
    threads: Iterable[threading.Thread], timeout: float, slice_seconds: float = 0.05
) -> None:
    """Join each of ``threads`` within ``timeout`` seconds in all, waking every
    ``slice_seconds`` so that a ``KeyboardInterrupt`` is raised promptly.

    One long ``Thread.join(timeout)`` is cut short by a real SIGINT on Linux and macOS, but
    not by ``_thread.interrupt_main()``, which is how a Jupyter kernel on Windows delivers an
    interrupt: that only sets a flag, checked between bytecodes.
    """
    deadline = time.monotonic() + timeout
    for thread in threads:
        while thread.is_alive():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            thread.join(min(left, slice_seconds))
