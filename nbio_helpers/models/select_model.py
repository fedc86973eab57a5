"""The ``select`` model: the kernel waits on every socket at once.

``select.select(rlist, wlist, [])`` sleeps until at least one socket is ready, so an idle
server uses no CPU. Write interest is asked for only while output is pending: asking it for
every socket would wake the loop at once, forever (an idle socket is always writable).
"""

from __future__ import annotations

import select
import sys
from typing import Any

from nbio_helpers.connection import Connection, accept_all, close_finished
from nbio_helpers.events import WAKEUP
from nbio_helpers.server import Server

# select() takes descriptors below FD_SETSIZE on POSIX; on Windows it takes at most 512 sockets.
FD_SETSIZE = 1024
WINDOWS_SELECT_LIMIT = 512


class SelectServer(Server):
    """Waits in ``select()`` for readable/writable sockets, then serves just those."""

    model = "select"
    taught_in = (4, 2)
    concurrent = nonblocking = waits_for_readiness = True
    max_connections = WINDOWS_SELECT_LIMIT - 2 if sys.platform == "win32" else FD_SETSIZE
    buffers_output = True
    backpressure = True
    connection_class = Connection
    logs_connections = True

    def serve(self) -> None:
        self.listener.setblocking(False)
        connections: list[Connection] = []
        while not self.stopping:
            rlist: list[Any] = [self.listener, self.waker]  # sockets, then connections
            rlist += [c for c in connections if c.wants_read]
            wlist = [c for c in connections if c.wants_write]
            # sleeps until something is ready
            readable, writable, _ = select.select(rlist, wlist, [])
            self.events.record(WAKEUP, nbytes=len(readable) + len(writable))
            for ready in readable:
                if ready is self.listener:
                    for conn in accept_all(self):  # a burst: each one counted as it joins
                        if self.fits_in_select(conn, connections):
                            connections.append(conn)
                elif ready is self.waker:
                    self.drain_waker()
                else:
                    ready.on_readable()
            for ready in writable:
                ready.on_writable()  # readiness is a hint: it may still raise BlockingIOError
            connections = close_finished(connections)  # close those that are done

    def fits_in_select(self, conn: Connection, connections: list[Connection]) -> bool:
        """Refuse (close) a connection that ``select()`` could not watch; the others carry on.

        Call it once per new connection, with the connections admitted so far (earlier ones
        of the same burst of accepts included): rlist holds the listener, the waker and
        every one of them (see :func:`admit_to_select`).
        """
        return admit_to_select(self, conn, watched=len(connections) + 2)


def admit_to_select(server: Server, conn: Connection, watched: int) -> bool:
    """Refuse (close, and count as one of ``server``'s refusals) a connection that
    ``select()`` could not watch besides the ``watched`` sockets in its lists; True for the
    others.

    Linux and macOS: its descriptor number must be below FD_SETSIZE (1024). Windows:
    ``select()`` takes at most 512 sockets per list, so there must be room for this one.
    """
    if sys.platform == "win32":
        fits = watched + 1 <= WINDOWS_SELECT_LIMIT
        why = reason = f"select() takes {WINDOWS_SELECT_LIMIT} sockets at most on Windows"
    else:
        fits = conn.fileno() < FD_SETSIZE
        why = f"descriptor beyond select()'s FD_SETSIZE ({FD_SETSIZE})"
        reason = f"descriptor {conn.fileno()} is beyond select()'s FD_SETSIZE limit"
    if not fits:
        server.count_refusal(why)
        conn.close(reason)
    return fits


__all__ = [
    "FD_SETSIZE",
    "WINDOWS_SELECT_LIMIT",
    "SelectServer",
    "admit_to_select",
]
