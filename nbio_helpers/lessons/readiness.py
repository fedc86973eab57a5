"""Readiness, seen from the kernel's side: level- against edge-triggered reports, and what a
selector's interest list costs to change.

Level-triggered (``selectors``, asyncio, ``select()``, ``poll()``, epoll by default): a wait
reports a socket for as long as it *is* ready, so data one ``recv()`` left behind is reported
again at the next wait. Edge-triggered (epoll's ``EPOLLET``, kqueue's ``EV_CLEAR``): a wait
reports a socket when it *becomes* ready; what is left is not reported again until more data
arrives (``man 7 epoll``: "edge-triggered mode delivers events only when changes occur").

Usage::

    readiness_reports(edge_triggered=False)   # [b'0123', b'4567', b'89', 'no report']
    readiness_reports(edge_triggered=True)    # [b'0123', 'no report', 'no report', 'no report']

    calls = collections.Counter()
    with SelectorsServer(selector_class=lambda: CountingSelector(calls)) as server:
        ...                                   # calls: {'register': ..., 'unregister': ...}
"""

from __future__ import annotations

import collections
import contextlib
import select
import selectors
import socket
import sys

__all__ = ["NO_REPORT", "CountingSelector", "readiness_reports"]

NO_REPORT = "no report"
"""What :func:`readiness_reports` records for a wait that reported nothing."""

MESSAGE = b"0123456789"


def readiness_reports(
    edge_triggered: bool, chunk: int = 4, waits: int = 4, wait: float = 0.05
) -> list:
    """The peer sends 10 bytes, once; then ``waits`` times: wait for a report on our socket
    (at most ``wait`` seconds), and after a report read at most ``chunk`` bytes, once.

    Parameters
    ----------
    edge_triggered:
        False: the default, level-triggered registration. True: edge-triggered, with
        ``select.EPOLLET`` (Linux epoll) or ``select.KQ_EV_CLEAR`` (macOS and BSD kqueue).
    chunk, waits, wait:
        Bytes per ``recv()``, number of waits, and seconds each wait may last.

    Returns
    -------
    One item per wait: the bytes its ``recv()`` read, or :data:`NO_REPORT`. Takes at most
    ``waits * wait`` seconds; everything opened is closed.

    Raises
    ------
    NotImplementedError
        On a system with neither epoll nor kqueue (Windows).
    """
    if not (hasattr(select, "epoll") or hasattr(select, "kqueue")):
        raise NotImplementedError(
            "edge-triggered waits need epoll (Linux) or kqueue "
            "(macOS, BSD); this system has neither"
        )
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    reports: list = []
    try:
        wait_once, close = _single_socket_waiter(ours, edge_triggered)
        try:
            peer.sendall(MESSAGE)
            for _ in range(waits):
                reports.append(ours.recv(chunk) if wait_once(wait) else NO_REPORT)
        finally:
            close()
    finally:
        ours.close()
        peer.close()
    return reports


def _single_socket_waiter(sock: socket.socket, edge_triggered: bool):
    """``(wait(seconds) -> reported?, close)`` for ``sock`` on epoll or kqueue, for reading."""
    if hasattr(select, "epoll"):
        epoll = select.epoll()
        flags = select.EPOLLIN | (select.EPOLLET if edge_triggered else 0)
        epoll.register(sock.fileno(), flags)
        return (lambda seconds: bool(epoll.poll(seconds))), epoll.close
    if sys.platform == "linux":  # pragma: no cover - Linux always has epoll
        raise OSError("no epoll on this Linux")  # (and mypy, checking for Linux, stops here)
    kqueue = select.kqueue()
    flags = select.KQ_EV_ADD | (select.KQ_EV_CLEAR if edge_triggered else 0)
    kqueue.control([select.kevent(sock.fileno(), select.KQ_FILTER_READ, flags)], 0, 0)
    return (lambda seconds: bool(kqueue.control(None, 1, seconds))), kqueue.close


class CountingSelector(selectors.DefaultSelector):
    """The OS's default selector, counting the calls that change its interest list.

    ``calls["register"]``, ``calls["modify"]`` and ``calls["unregister"]`` count the calls
    made by its user; a ``modify()`` that changes only ``data`` (no system call) is not
    counted, and neither are the register/unregister pairs that some selectors (kqueue)
    make inside ``modify()``. With epoll each counted call is one ``epoll_ctl()`` system call;
    with kqueue one ``kevent()`` per filter (``modify`` = unregister + register); with
    ``select()`` (Windows) none: the whole list is handed over at every wait instead.

    Parameters
    ----------
    calls:
        A :class:`collections.Counter` to count into (default: a new one, as ``.calls``).
        Share one with the caller to read the counts after the selector has gone::

            counts = collections.Counter()
            server = SelectorsServer(selector_class=lambda: CountingSelector(counts))
    """

    def __init__(self, calls: collections.Counter | None = None):
        super().__init__()
        self.calls = collections.Counter() if calls is None else calls
        self._inside = False

    @contextlib.contextmanager
    def _counted(self, name: str):
        """Count ``name``, unless one of our own methods is the caller (kqueue's modify)."""
        outer = not self._inside
        if outer:
            self.calls[name] += 1
            self._inside = True
        try:
            yield
        finally:
            if outer:
                self._inside = False

    def register(self, fileobj, events, data=None):
        with self._counted("register"):
            return super().register(fileobj, events, data)

    def unregister(self, fileobj):
        with self._counted("unregister"):
            return super().unregister(fileobj)

    def modify(self, fileobj, events, data=None):
        if events == self.get_key(fileobj).events:  # only data changes: no system call
            return super().modify(fileobj, events, data)
        with self._counted("modify"):
            return super().modify(fileobj, events, data)
