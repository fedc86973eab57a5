"""What sits in a TCP socket's kernel buffers, right now.

Notebook 02 fills a connection's buffers and asks where the bytes are::

    from nbio_helpers.lessons.nb02 import socket_queues
    socket_queues(theirs)     # SocketQueues(unread=18432, unsent=0, unacknowledged=0)
    socket_queues(ours)       # SocketQueues(unread=0, unsent=21504, unacknowledged=9216)

The figures are a snapshot: acknowledgements and window updates change them within
milliseconds. What the system can tell differs:

* Linux: all three, with the ``ioctl()`` requests of tcp(7): ``FIONREAD`` (= ``SIOCINQ``,
  unread), ``TIOCOUTQ`` (= ``SIOCOUTQ``, unsent *plus* unacknowledged, although tcp(7) calls it
  "unsent") and ``SIOCOUTQNSD`` (unsent alone, ``linux/sockios.h``);
* macOS and the BSDs: ``unread`` only (``FIONREAD``);
* Windows: nothing (Python's ``socket.ioctl()`` offers no such request there): None.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import sys

SIOCOUTQNSD = 0x894B
"""Linux ``ioctl()`` request (``linux/sockios.h``): bytes in the send queue not sent yet."""


@dataclasses.dataclass(frozen=True)
class SocketQueues:
    """Bytes of data in a TCP socket's kernel queues at one moment.

    Attributes
    ----------
    unread:
        Received from the peer, waiting for ``recv()``.
    unsent:
        Accepted by ``send()``, not transmitted yet (None where the system cannot tell).
    unacknowledged:
        Transmitted, but kept in the send buffer until the peer acknowledges them, in case
        they must be sent again (None where the system cannot tell).
    """

    unread: int
    unsent: int | None = None
    unacknowledged: int | None = None


def socket_queues(sock: socket.socket) -> SocketQueues | None:
    """What sits in ``sock``'s kernel buffers now.

    Parameters
    ----------
    sock:
        A TCP socket (connected, or it reports zeros).

    Returns
    -------
    SocketQueues or None
        All three figures on Linux; ``unread`` only on macOS and the BSDs (the others are
        None); None on Windows.
    """
    if sys.platform == "win32":
        return None
    import fcntl  # Unix only
    import termios

    def ask(request: int) -> int:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0" * 4))[0]

    unread = ask(termios.FIONREAD)
    if not sys.platform.startswith("linux"):
        return SocketQueues(unread)
    in_send_queue = ask(termios.TIOCOUTQ)  # unsent + sent but not acknowledged
    unsent = ask(SIOCOUTQNSD)
    return SocketQueues(unread, unsent, in_send_queue - unsent)


__all__ = ["SIOCOUTQNSD", "SocketQueues", "socket_queues"]
