"""Step 5 · the real thing: the very same ``chat()`` coroutine, on asyncio.

Only the client changes: :class:`AsyncioClient` gives ``chat()`` the same ``readline()`` and
``say()`` on top of asyncio's streams (``StreamReader.read``, ``StreamWriter.write``), and
``asyncio.start_server`` replaces our accepting task. asyncio runs on a private
``SelectorEventLoop`` in the server thread, as the ``asyncio`` model does.
"""

from __future__ import annotations

import asyncio
import collections

from nbio_helpers.events import ACCEPT, CLOSE
from nbio_helpers.framing import MAX_LINE, LineFramer, LineTooLong
from nbio_helpers.loop.chat import Room, decode, error_line
from nbio_helpers.loop.chat_coroutines import chat
from nbio_helpers.server import Server


class AsyncioClient:
    """:class:`~.chat_coroutines.CoroutineClient`'s interface on asyncio streams."""

    def __init__(self, server, reader, writer):
        self.server, self.reader, self.writer = server, reader, writer
        self.framer = LineFramer(server.max_line)
        self.lines: collections.deque[str | LineTooLong | None] = collections.deque()
        self.name: str | None = None
        self.dropped = 0

    async def readline(self):
        while not self.lines:
            try:
                data = await asyncio.wait_for(self.reader.read(4096), self.server.idle_timeout)
            except ConnectionError:
                data = b""
            lines: list[bytes | LineTooLong | None]
            try:
                lines = [*self.framer.feed(data)] if data else [*self.framer.end(), None]
            except LineTooLong as exc:
                lines = [*exc.lines, exc]
            self.lines.extend(decode(x) if isinstance(x, bytes) else x for x in lines)
        line = self.lines.popleft()
        if isinstance(line, LineTooLong):
            raise line
        return line

    def say(self, text):
        if self.writer.transport.get_write_buffer_size() > self.server.high_water:
            self.dropped += 1  # it does not read: do not wait for it
            return
        self.writer.write(text.encode() + b"\n")


class AsyncioChatServer(Server):
    """The chat of :mod:`.chat` on asyncio, sharing :func:`~.chat_coroutines.chat`."""

    model = "chat-asyncio"

    def __init__(self, *args, max_line=MAX_LINE, idle_timeout=None, handler=None, **kwargs):
        super().__init__(*args, **kwargs)
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be > 0 seconds, not {idle_timeout}")
        self.max_line, self.idle_timeout = max_line, idle_timeout
        self.handler = handler or chat

    def serve(self) -> None:
        loop = asyncio.SelectorEventLoop()
        try:
            loop.run_until_complete(self.main(loop))
        finally:
            loop.close()

    async def main(self, loop):
        stopped = loop.create_future()
        loop.add_reader(self.waker, lambda: stopped.done() or stopped.set_result(None))
        assert self.listener is not None  # serve() runs between start() and stop()
        self.listener.setblocking(False)
        self.room = Room()
        server = await asyncio.start_server(
            self.serve_client, sock=self.listener, backlog=self.backlog
        )
        try:
            await stopped
        finally:
            loop.remove_reader(self.waker)
            server.close()
            tasks = [t for t in asyncio.all_tasks(loop) if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def serve_client(self, reader, writer):
        cid = self.new_conn_id()
        self.events.record(ACCEPT, cid)
        client = AsyncioClient(self, reader, writer)
        reason = "peer closed"
        try:
            await self.handler(self.room, client)
        except (LineTooLong, TimeoutError, asyncio.TimeoutError) as exc:  # two before 3.11
            client.say(error_line(exc, self))
            reason = type(exc).__name__
        except asyncio.CancelledError:
            reason = "server stopping"
        finally:
            self.room.leave(client)
            writer.close()
            self.events.record(CLOSE, cid, detail=reason)


__all__ = ["AsyncioChatServer", "AsyncioClient"]
