"""The limit on open descriptors of this process, and what to do when it is reached.

Every socket, file and pipe takes a descriptor, and the soft ``RLIMIT_NOFILE`` caps how many
a process may hold at once (often 1024 on Linux, 256 on macOS). A user may raise the soft limit
up to the hard limit, which is what a server holding thousands of connections has to do.

Usage::

    ensure_fd_room(2 * clients)       # before opening many sockets: room for that many more
    raise_fd_limit(5000)              # -> the soft limit now in force
    with fd_limit_raised(2000) as limit:
        ...                           # the previous soft limit is back after the block

When the limit is reached anyway, ``accept()`` fails with EMFILE but the client stays in the
listen backlog: the listener stays readable, and a ``select()`` loop would wake up at once,
forever, until a descriptor is freed. :meth:`DescriptorReserve.turn_away` is the classic way
out: a descriptor held in reserve is closed so that ``accept()`` can take the client, which is
closed at once (it sees the connection end), and the reserve is opened again.

POSIX only: where the :mod:`resource` module is missing (Windows) there is no such limit; the
functions return None and change nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys
import threading

if sys.platform == "win32":  # pragma: no cover - no resource module, no such limit
    resource = None
else:
    import resource  # POSIX only

OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)
"""``accept()`` errnos meaning "no descriptor left", for this process or for the whole system."""


def fd_limit() -> int | None:
    """The soft limit on open descriptors of this process; None if there is none (or unknown)."""
    if resource is None:
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def raise_fd_limit(wanted: int) -> int | None:
    """Raise the soft ``RLIMIT_NOFILE`` towards ``wanted`` (never above the hard limit).

    Returns the soft limit in force afterwards (None where there is no such limit, e.g.
    Windows). Never lowers the limit and never raises: if the OS refuses, the old limit stays,
    so compare the result with ``wanted`` when it matters.
    """
    soft = fd_limit()
    if soft is None or soft >= wanted:
        return soft
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        pass  # e.g. macOS caps it below the reported hard limit: keep what we have
    return fd_limit()


def open_fd_count() -> int | None:
    """How many descriptors this process has open now; None if unknown.

    Linux: ``/proc/self/fd``; macOS: ``/dev/fd``; elsewhere psutil, if it can tell.
    """
    for folder in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(folder):
            try:
                return len(os.listdir(folder)) - 1  # less the descriptor listdir itself used
            except OSError:
                pass
    try:
        import psutil

        process = psutil.Process()
        return process.num_fds() if hasattr(process, "num_fds") else None
    except Exception:
        return None


ROOM_MARGIN = 64
"""Descriptors kept free beyond what a caller of :func:`ensure_fd_room` asked for (files,
pipes, the kernel's own sockets)."""


def ensure_fd_room(count: int) -> int | None:
    """Make room for ``count`` more open descriptors in this process, if the limit allows.

    Raises the soft limit (see :func:`raise_fd_limit`) to what is open now plus ``count``
    plus :data:`ROOM_MARGIN`. Call it before opening many sockets: macOS starts processes
    with a soft limit of 256, so 100 clients of a server in the same process (200 sockets)
    would otherwise fail with "Too many open files". Pass ``2 * n`` for ``n`` connections to
    a server that runs in this process (each connection is a socket at both ends).

    Returns the soft limit in force (None where there is none, e.g. Windows); never lowers it.
    It also opens the process-wide :func:`descriptor_reserve` (one descriptor, once), so that
    a server started after this call can turn clients away when the limit is reached.
    """
    descriptor_reserve()
    current = fd_limit()
    if current is None:
        return None
    open_now = open_fd_count()
    if open_now is None:
        open_now = current  # unknown: ask for enough on top of the whole current limit
    return raise_fd_limit(open_now + count + ROOM_MARGIN)


@contextlib.contextmanager
def fd_limit_raised(wanted: int):
    """:func:`raise_fd_limit` for the duration of a ``with`` block; yields its result.

    On exit the soft limit goes back to what it was before the block.
    """
    before = fd_limit()
    try:
        yield raise_fd_limit(wanted)
    finally:
        if before is not None and fd_limit() != before:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (before, hard))


class DescriptorReserve:
    """One descriptor held back for the moment the process runs out of them.

    ``turn_away(listener)`` uses it to take one waiting client off ``listener``'s backlog.
    One reserve serves a whole process (the limit is per process); a lock keeps two server
    threads from using it at the same time. ``close()`` gives the descriptor back.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._fd = self._open()

    @staticmethod
    def _open() -> int | None:
        if resource is None:
            return None  # no descriptor limit to hit (Windows counts sockets differently)
        try:
            return os.open(os.devnull, os.O_RDONLY)
        except OSError:
            return None  # out of descriptors right now: try again next time

    @property
    def held(self) -> bool:
        """True while the reserve descriptor is open."""
        return self._fd is not None

    def turn_away(self, listener: socket.socket) -> bool:
        """Accept one client waiting on ``listener`` and close it at once.

        Returns True if a client was turned away; False if none was waiting, or if there was
        no reserve (another thread took the freed descriptor: it is opened again next time).
        """
        with self._lock:
            if self._fd is None:
                self._fd = self._open()
                if self._fd is None:
                    return False
            os.close(self._fd)
            try:
                client, _ = listener.accept()  # takes the descriptor just freed
            except OSError:
                turned_away = False  # nobody waiting any more
            else:
                client.close()
                turned_away = True
            self._fd = self._open()
        return turned_away

    def close(self) -> None:
        """Close the reserve descriptor (for tests; the process-wide reserve stays open)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


_reserve: DescriptorReserve | None = None
_reserve_lock = threading.Lock()


def descriptor_reserve() -> DescriptorReserve:
    """The process-wide :class:`DescriptorReserve`, opened by the first call.

    Importing the package opens nothing: the reserve is opened when a server starts (by
    :func:`ensure_fd_room`, which every server calls before it listens), so that it is held
    before the limit can be reached. Every call returns the same reserve.
    """
    global _reserve
    with _reserve_lock:
        if _reserve is None:
            _reserve = DescriptorReserve()
        return _reserve


__all__ = [
    "OUT_OF_DESCRIPTORS",
    "ROOM_MARGIN",
    "DescriptorReserve",
    "descriptor_reserve",
    "ensure_fd_room",
    "fd_limit",
    "fd_limit_raised",
    "open_fd_count",
    "raise_fd_limit",
]
