"""Step 1 · the chat server as callbacks on the :class:`~.reactor.Reactor`.

Nothing may block, so nothing may wait: each callback does what it can and returns. The
conversation (first a name, then messages) cannot be written as one piece of code any more:
it becomes a *state machine*, ``state`` remembered between callbacks, and one idea is spread
over ``on_readable``, ``on_line``, ``got_name`` and ``got_message``.
"""

from __future__ import annotations

from nbio_helpers.connection import accept_all
from nbio_helpers.framing import LineTooLong
from nbio_helpers.loop.chat import LineClient, Room, error_line
from nbio_helpers.loop.reactor import Reactor
from nbio_helpers.loop.servers import LoopServer


class CallbackConnection(LineClient):
    """One client, driven by the reactor: ``on_readable`` is called whenever data is there."""

    def __init__(self, server, loop, sock, conn):
        super().__init__(server, loop, sock, conn)
        self.room = server.room
        self.state = "naming"  # then "chatting", then "closed"
        self.room.welcome(self)
        loop.add_reader(sock, self.on_readable)

    def on_readable(self):
        data = self.recv()
        if data is None:
            return  # not ready after all: wait for the next call
        self.received(data)
        while self.lines and self.state != "closed":
            try:
                line = self.next_line()
            except LineTooLong as exc:
                self.say(error_line(exc, self.server))
                return self.hang_up("line too long")
            if line is None:
                return self.hang_up("peer closed")
            self.on_line(line)

    def on_line(self, line):
        if self.state == "naming":
            self.got_name(line)
        else:
            self.got_message(line)

    def got_name(self, name):
        problem = self.room.name_problem(name)
        if problem:
            self.say(problem)  # stay in "naming": the next line is a name too
        else:
            self.room.join(self, name)
            self.state = "chatting"

    def got_message(self, line):
        if not self.room.hear(self, line):
            self.hang_up("quit")

    def hang_up(self, reason):
        self.state = "closed"
        self.room.leave(self)
        self.close(reason)


class CallbackChatServer(LoopServer):
    """The chat (see :mod:`.chat`) as callbacks on a :class:`~.reactor.Reactor`."""

    model = "chat-callbacks"
    loop_class = Reactor

    def start_serving(self, loop):
        self.room = Room()
        loop.add_reader(self.listener, self.accept, loop)

    def accept(self, loop):
        for sock in accept_all(self, make=lambda sock, server: sock):
            sock.setblocking(False)
            CallbackConnection(self, loop, sock, self.track(sock))


__all__ = ["CallbackChatServer", "CallbackConnection"]
