"""A real socket that notes what the learner's code did with it, for the checkers.

A checker hands the learner's function a :class:`WatchedSocket` instead of a plain socket: it
is the same connection (the same descriptor), behaves exactly like a socket, and notes in
``calls`` the calls that exercise rules are about. A rule the learner could break for a
moment and then repair (switch to timeout mode and back; retry ``recv()`` a thousand times)
leaves no trace in the socket's state, but it does in ``calls``::

    sock = watch(peer)               # the learner's end of a ScriptedPeer, now watched
    sock.calls = Calls()             # before each call of the learner's function
    ...
    sock.calls.recv                  # [65536]: one recv(), asking for 65,536 bytes
    sock.calls.waiting_modes         # ['settimeout(0.05)']
"""

from __future__ import annotations

import dataclasses
import socket


@dataclasses.dataclass
class Calls:
    """What the learner's code did with a :class:`WatchedSocket` during one call."""

    recv: list = dataclasses.field(default_factory=list)
    """The size asked for by each ``recv()``-family call."""
    send: int = 0
    """``send()``, ``sendto()`` and ``sendmsg()`` calls."""
    would_block: int = 0
    """Of those, how many raised ``BlockingIOError``."""
    sendall: int = 0
    fileno: int = 0
    """``fileno()`` calls: ``select.select()`` makes one per list the socket is in, so a loop
    that polls ``select(..., 0)`` shows here (``selectors`` asks once, at ``register()``)."""
    waiting_modes: list = dataclasses.field(default_factory=list)
    """Each ``setblocking(True)`` / ``settimeout(t)`` (None or t > 0), as written."""


class WatchedSocket(socket.socket):
    """A real socket that notes, in :attr:`calls`, the calls the exercises' rules are about.

    Make one from the learner's end of a :class:`~nbio_helpers.exercises.nb01.ScriptedPeer`
    with :func:`watch`. The checker's own calls go around it (:meth:`peek`,
    ``socket.socket.send(sock, ...)``), or happen before ``calls`` is reset.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = Calls()

    # recv family: note the size asked for
    def recv(self, bufsize, *args):
        self.calls.recv.append(bufsize)
        return super().recv(bufsize, *args)

    def recv_into(self, buffer, nbytes=0, *args):
        self.calls.recv.append(nbytes or len(memoryview(buffer)))
        return super().recv_into(buffer, nbytes, *args)

    def recvfrom(self, bufsize, *args):
        self.calls.recv.append(bufsize)
        return super().recvfrom(bufsize, *args)

    def recvfrom_into(self, buffer, nbytes=0, *args):
        self.calls.recv.append(nbytes or len(memoryview(buffer)))
        return super().recvfrom_into(buffer, nbytes, *args)

    def recvmsg(self, bufsize, *args):
        self.calls.recv.append(bufsize)
        return super().recvmsg(bufsize, *args)

    # send family: count the calls and the BlockingIOErrors
    def _sent(self, method, *args):
        self.calls.send += 1
        try:
            return method(*args)
        except BlockingIOError:
            self.calls.would_block += 1
            raise

    def send(self, *args):
        return self._sent(super().send, *args)

    def sendto(self, *args):
        return self._sent(super().sendto, *args)

    def sendmsg(self, *args):
        return self._sent(super().sendmsg, *args)

    def sendall(self, *args):
        self.calls.sendall += 1
        return super().sendall(*args)

    # the mode
    def setblocking(self, flag):
        if flag:
            self.calls.waiting_modes.append(f"setblocking({flag!r})")
        return super().setblocking(flag)

    def settimeout(self, value):
        if value is None or (isinstance(value, (int, float)) and value > 0):
            shown = f"{value:g}" if isinstance(value, float) else repr(value)
            self.calls.waiting_modes.append(f"settimeout({shown})")
        return super().settimeout(value)

    def fileno(self):
        self.calls.fileno += 1
        return super().fileno()

    def peek(self, size: int) -> bytes:
        """What is waiting (up to ``size`` bytes), without consuming it or noting a call."""
        try:
            return socket.socket.recv(self, size, socket.MSG_PEEK)
        except BlockingIOError:
            return b""


def watch(peer) -> WatchedSocket:
    """Replace ``peer.sock`` (the learner's end) with a :class:`WatchedSocket` on the same
    connection, non-blocking; the peer still closes it. Returns it."""
    old = peer.sock
    sock = WatchedSocket(old.family, old.type, old.proto, fileno=old.detach())
    sock.setblocking(False)
    peer.sock = sock
    return sock


__all__ = ["Calls", "WatchedSocket", "watch"]
