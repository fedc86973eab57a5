"""Step 4 · the chat server as ``async def`` coroutines on our own :class:`~.coroutines.Loop`.

``chat()`` reads like step 2's generator with ``await`` for ``yield from``: the same
conversation, top to bottom. :class:`CoroutineClient` is what it awaits: ``readline()`` waits
for a line through the loop's futures (with ``wait_for`` when there is an idle timeout).
The same ``chat()`` also runs, unchanged, on asyncio (step 5: :mod:`.chat_asyncio`).
"""

from __future__ import annotations

from nbio_helpers.connection import accept_all
from nbio_helpers.framing import LineTooLong
from nbio_helpers.loop.chat import LineClient, Room, error_line
from nbio_helpers.loop.coroutines import Loop
from nbio_helpers.loop.servers import LoopServer


# Deliberate teaching copy of chat_generators.chat, with `await` for `yield from`: notebook 06
# prints the difference between the two.
async def chat(room, client):
    """One client's conversation (a coroutine): a name first, then messages."""
    room.welcome(client)
    while True:
        name = await client.readline()
        if name is None:
            return  # gone before giving a name
        problem = room.name_problem(name)
        if problem is None:
            break
        client.say(problem)
    room.join(client, name)
    try:
        while (line := await client.readline()) is not None:
            if not room.hear(client, line):
                break  # /quit
    finally:
        room.leave(client)


class CoroutineClient(LineClient):
    """A client for coroutines: ``line = await client.readline()``, ``client.say(text)``."""

    timeout: float | None = None

    async def readline(self):
        """The next line (None at the end of the stream); raises TimeoutError after
        :attr:`timeout` seconds without data, LineTooLong for a line over the limit."""
        while not self.lines:
            if self.timeout is None:
                await self.loop.readable(self.sock)
            else:
                await self.loop.wait_for(self.loop.readable(self.sock), self.timeout)
            data = self.recv()
            if data is not None:
                self.received(data)
        return self.next_line()


class CoroutineChatServer(LoopServer):
    """The chat as coroutines on our :class:`~.coroutines.Loop`.

    ``handler`` (default :func:`chat`): the coroutine function run for each client, as
    ``handler(room, client)`` -- notebook 06's exercise plugs the learner's in here.
    ``room``: the :class:`~.chat.Room` to use (default a new one; a checker may pass one
    that records what the handler does).
    """

    model = "chat-coroutines"
    loop_class = Loop

    def __init__(self, *args, handler=None, room=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.handler = handler or chat
        self.room = room if room is not None else Room()

    def start_serving(self, loop):
        loop.create_task(self.accept_clients(loop), name="accept")

    async def accept_clients(self, loop):
        while True:
            await loop.readable(self.listener)
            for sock in accept_all(self, make=lambda sock, server: sock):
                sock.setblocking(False)
                client = CoroutineClient(self, loop, sock, self.track(sock))
                client.timeout = self.idle_timeout
                loop.create_task(self.serve_client(client), name=f"conn {client.id}")

    async def serve_client(self, client):
        """Run the handler; an error gets its ``! ...`` line; then close the connection."""
        reason = "peer closed"
        try:
            await self.handler(self.room, client)
        except (LineTooLong, TimeoutError) as exc:
            client.say(error_line(exc, self))
            reason = type(exc).__name__
        finally:
            self.room.leave(client)  # in case the handler did not
            client.close(reason)


__all__ = ["CoroutineChatServer", "CoroutineClient", "chat"]
