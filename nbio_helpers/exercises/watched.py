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


# Each wrapper looks its method up by name when called: socket.socket has no recvmsg and no
# sendmsg on Windows.
def _noting_size(name: str):
    """``socket.socket``'s method ``name(bufsize, ...)``, noting ``bufsize`` in ``calls.recv``."""

    def noting(self, bufsize, *args):
        self.calls.recv.append(bufsize)
        return getattr(socket.socket, name)(self, bufsize, *args)

    noting.__name__ = name
    return noting


def _noting_buffer_size(name: str):
    """``socket.socket``'s method ``name(buffer, nbytes=0, ...)``, noting in ``calls.recv``
    the size it may receive (``nbytes``, or the whole buffer)."""

    def noting(self, buffer, nbytes=0, *args):
        self.calls.recv.append(nbytes or len(memoryview(buffer)))
        return getattr(socket.socket, name)(self, buffer, nbytes, *args)

    noting.__name__ = name
    return noting


def _counting(name: str):
    """``socket.socket``'s method ``name``, counting its calls in ``calls.send`` and the
    ``BlockingIOError`` it raises in ``calls.would_block``."""

    def counting(self, *args):
        self.calls.send += 1
        try:
            return getattr(socket.socket, name)(self, *args)
        except BlockingIOError:
            self.calls.would_block += 1
            raise

    counting.__name__ = name
    return counting


class WatchedSocket(socket.socket):
    """A real socket that notes, in :attr:`calls`, the calls the exercises' rules are about.

    Make one from the learner's end of a :class:`~nbio_helpers.exercises.nb01.ScriptedPeer`
    with :func:`watch`. The checker's own calls go around it (:meth:`peek`,
    ``socket.socket.send(sock, ...)``), or happen before ``calls`` is reset.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = Calls()

    # recv family: note the size asked for; send family: count the calls and BlockingIOErrors
    recv = _noting_size("recv")
    recvfrom = _noting_size("recvfrom")
    recvmsg = _noting_size("recvmsg")
    recv_into = _noting_buffer_size("recv_into")
    recvfrom_into = _noting_buffer_size("recvfrom_into")
    send = _counting("send")
    sendto = _counting("sendto")
    sendmsg = _counting("sendmsg")

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
