"""The ``asyncio`` model: the same echo server written with asyncio streams.

Under the hood, asyncio's event loop *is* a selector loop like the ``selectors`` model: it
registers sockets with ``selectors.DefaultSelector`` and calls back whoever waits on them.

A Jupyter kernel already runs an asyncio loop in its main thread, and only one loop may run
per thread; so this server creates its own loop and runs it in the server's own thread.
"""
from __future__ import annotations

import asyncio

from ..asyncio_clients import ClientTasks
from ..connection import echo_upper
from ..events import ACCEPT, CLOSE, EOF, RECV, SEND
from ..server import Server


class AsyncioServer(Server):
    """Runs ``asyncio.start_server`` on a private :class:`asyncio.SelectorEventLoop`."""

    model = "asyncio"

    def serve(self) -> None:
        loop = asyncio.SelectorEventLoop()   # a selector loop on every OS (not Proactor)
        try:
            loop.run_until_complete(self._main(loop))
        finally:
            loop.close()

    async def _main(self, loop) -> None:
        stop = loop.create_future()
        # stop() writes to the socketpair; the loop watches it like any socket.
        loop.add_reader(self.waker, lambda: stop.done() or stop.set_result(None))
        self.listener.setblocking(False)
        # backlog: asyncio listen()s again on the socket, by default with a backlog of 100.
        clients = ClientTasks()   # so that stop() can drop them, also on Python 3.12+
        server = await asyncio.start_server(clients.tracking(self.handle), sock=self.listener,
                                            limit=self.recv_size, backlog=self.backlog)
        try:
            await stop
        finally:
            loop.remove_reader(self.waker)
            await clients.drop(server)   # closes it, cancels each handler, aborts each client

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Echo one client: ``await`` wherever the blocking model would block."""
        cid = self.new_conn_id()   # the transport owns the socket and closes it
        self.events.record(ACCEPT, cid)
        writer.transport.set_write_buffer_limits(high=self.high_water)  # backpressure
        reason = "peer closed"
        try:
            while data := await reader.read(self.recv_size):
                self.events.record(RECV, cid, len(data))
                writer.write(echo_upper(data))
                await writer.drain()           # waits while the output buffer is too full
                self.events.record(SEND, cid, len(data))
            self.events.record(EOF, cid)
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError) as exc:
            reason = type(exc).__name__
        except asyncio.CancelledError:
            reason = "server stopping"
        finally:
            writer.close()
            self.events.record(CLOSE, cid, detail=reason)
