"""Step 2 · the chat server as generator tasks: one readable function per client.

``chat()`` is the whole conversation, top to bottom: ask a name until it is a good one, then
pass every line on until the client leaves. Wherever it must wait for data it ``yield``\\ s
``("read", sock)`` (inside :meth:`GeneratorClient.readline`), and the loop resumes it there.
The state machine of step 1 is still there, but Python keeps it: it is where the generator
stopped.
"""

from __future__ import annotations

from nbio_helpers.connection import accept_all
from nbio_helpers.framing import LineTooLong
from nbio_helpers.loop.chat import LineClient, Room, error_line
from nbio_helpers.loop.generators import GeneratorLoop
from nbio_helpers.loop.servers import LoopServer


# Deliberate teaching copy of chat_coroutines.chat, with `yield from` for `await`: notebook 06
# prints the difference between the two.
def chat(room, client):
    """One client's conversation (a generator task): a name first, then messages."""
    room.welcome(client)
    while True:
        name = yield from client.readline()
        if name is None:
            return  # gone before giving a name
        problem = room.name_problem(name)
        if problem is None:
            break
        client.say(problem)
    room.join(client, name)
    try:
        while (line := (yield from client.readline())) is not None:
            if not room.hear(client, line):
                break  # /quit
    finally:
        room.leave(client)


class GeneratorClient(LineClient):
    """A client whose ``readline()`` is a generator: ``line = yield from client.readline()``."""

    timeout: float | None = None  # step 3: seconds to wait for data

    def readline(self):
        """The next line (None at the end of the stream); yields to the loop while waiting."""
        while not self.lines:
            yield ("read", self.sock) if self.timeout is None else ("read", self.sock, self.timeout)
            data = self.recv()
            if data is not None:
                self.received(data)
        return self.next_line()


class GeneratorChatServer(LoopServer):
    """The chat as generator tasks on a :class:`~.generators.GeneratorLoop`."""

    model = "chat-generators"
    loop_class = GeneratorLoop
    client_class = GeneratorClient

    def start_serving(self, loop):
        self.room = Room()
        loop.spawn(self.accept_clients(loop))

    def accept_clients(self, loop):
        while True:
            yield "read", self.listener
            for sock in accept_all(self, make=lambda sock, server: sock):
                sock.setblocking(False)
                client = self.client_class(self, loop, sock, self.track(sock))
                client.timeout = self.idle_timeout
                loop.spawn(self.serve_client(client))

    def serve_client(self, client):
        """Run ``chat()``; an error gets its ``! ...`` line; then close the connection."""
        reason = "peer closed"
        try:
            yield from chat(self.room, client)
        except (LineTooLong, TimeoutError) as exc:
            client.say(error_line(exc, self))
            reason = type(exc).__name__
        finally:
            client.close(reason)


__all__ = ["GeneratorChatServer", "GeneratorClient", "chat"]
