"""The ``tasks`` model: the echo server as ``async def`` coroutines on *our own* loop.

The loop is the one notebook 06 builds (:class:`nbio_helpers.loop.Loop`: a selectors reactor,
a timer heap, futures and tasks), not asyncio's; the echo coroutine reads like the
``asyncio`` model's, and like the ``threads`` model's blocking loop with ``await`` where that
one blocks. Backpressure: ``await stream.drain()`` (the water marks of the other models).
"""

from __future__ import annotations

from nbio_helpers.connection import accept_all, echo_upper
from nbio_helpers.loop.coroutines import Loop
from nbio_helpers.loop.servers import LoopServer
from nbio_helpers.loop.streams import Stream


class TasksServer(LoopServer):
    """One task accepts; one task per client echoes (:class:`~nbio_helpers.loop.Loop`)."""

    model = "tasks"
    taught_in = (6, 5)
    concurrent = nonblocking = waits_for_readiness = True
    max_connections = None
    buffers_output = True  # each Stream's own output buffer
    backpressure = True  # await stream.drain()
    loop_class = Loop
    logs_connections = True

    def start_serving(self, loop: Loop) -> None:
        loop.create_task(self.accept_clients(loop), name="accept")

    async def accept_clients(self, loop: Loop) -> None:
        while True:
            await loop.readable(self.listener)
            for sock in accept_all(self, make=lambda sock, server: sock):
                stream = Stream(self, loop, sock)
                loop.create_task(self.echo(stream), name=f"conn {stream.id}")

    async def echo(self, stream: Stream) -> None:
        """Echo one client until it closes: ``await`` wherever a blocking server would block."""
        try:
            while data := await stream.read(self.recv_size):
                stream.write(echo_upper(data))
                await stream.drain()  # waits while the client reads too slowly
        finally:
            stream.close()


__all__ = [
    "TasksServer",
]
