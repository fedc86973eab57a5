"""The ``selectors`` model: ``selectors.DefaultSelector`` (epoll on Linux, kqueue on macOS).

The same loop as ``select``, but the kernel keeps the interest list: each wait costs time for
the *ready* sockets, not for every socket, and there is no FD_SETSIZE limit. Per-connection
state travels in ``SelectorKey.data``.
"""

from __future__ import annotations

import selectors
from typing import Any

from nbio_helpers.connection import Connection, accept_all
from nbio_helpers.events import WAKEUP
from nbio_helpers.models.select_model import admit_to_select
from nbio_helpers.server import Server

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class SelectorsServer(Server):
    """Waits on a :mod:`selectors` selector; ``key.data`` is the :class:`Connection`.

    Parameters
    ----------
    selector_class:
        Which selector to use (default ``selectors.DefaultSelector``).
    """

    model = "selectors"
    taught_in = (5, 1)
    concurrent = nonblocking = waits_for_readiness = True
    max_connections = None  # with DefaultSelector on Linux and macOS (Windows: select())
    buffers_output = True
    backpressure = True
    connection_class = Connection
    logs_connections = True

    def __init__(
        self,
        *args: Any,
        selector_class: type[selectors.BaseSelector] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.selector_class = selector_class or selectors.DefaultSelector

    def serve(self) -> None:
        self.listener.setblocking(False)
        with self.selector_class() as sel:
            sel.register(self.listener, READ, data="listener")
            sel.register(self.waker, READ, data="waker")
            while not self.stopping:
                ready = sel.select()  # sleeps until something is ready
                self.events.record(WAKEUP, nbytes=len(ready))
                for key, mask in ready:
                    if key.data == "listener":
                        for conn in accept_all(self):
                            if self.can_watch(sel, conn):
                                sel.register(conn.sock, READ, data=conn)
                    elif key.data == "waker":
                        self.drain_waker()
                    else:
                        self.serve_connection(sel, key, mask)

    def can_watch(self, sel: selectors.BaseSelector, conn: Connection) -> bool:
        """Refuse (close) a connection that the selector could not watch; True for the others.

        Only ``selectors.SelectSelector`` has a limit, ``select()``'s: on Linux and macOS no
        descriptor from FD_SETSIZE (1024) up; on Windows (where it is the default selector)
        at most 512 sockets, the listener and the waker included. epoll, kqueue and poll
        have none.
        """
        if not isinstance(sel, selectors.SelectSelector):
            return True
        return admit_to_select(self, conn, watched=len(sel.get_map()))

    def serve_connection(
        self, sel: selectors.BaseSelector, key: selectors.SelectorKey, mask: int
    ) -> None:
        """Read and/or write one ready connection, then update what we wait for on it."""
        conn: Connection = key.data
        if mask & READ:
            conn.on_readable()
        if conn.wants_write:
            # Reply at once rather than wait for a WRITE event: a socket is nearly always
            # writable, and asking first costs two more system calls and a loop round per
            # message. Only what send() leaves in the buffer waits for WRITE (as in asyncio).
            conn.on_writable()
        if conn.done:
            sel.unregister(conn.sock)  # stop watching it, then close it
            conn.close()
            return
        wanted = (READ if conn.wants_read else 0) | (WRITE if conn.wants_write else 0)
        if wanted != key.events:
            sel.modify(conn.sock, wanted, data=conn)


__all__ = [
    "READ",
    "WRITE",
    "SelectorsServer",
]
