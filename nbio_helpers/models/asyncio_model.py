"""The ``asyncio`` model: the same echo server written with asyncio streams.

Under the hood, asyncio's event loop *is* a selector loop like the ``selectors`` model: it
registers sockets with ``selectors.DefaultSelector`` and calls back whoever waits on them.

A Jupyter kernel already runs an asyncio loop in its main thread, and only one loop may run
per thread; so this server creates its own loop and runs it in the server's own thread.

Clients are accepted with :func:`~nbio_helpers.connection.accept_all`, as in every other model,
and each accepted socket becomes a pair of streams (``asyncio.open_connection(sock=...)``).
Not with ``asyncio.start_server``: out of descriptors, its accept loop logs a traceback for
every failed ``accept()`` (up to ``backlog`` of them per turn of the loop, each also scheduling
a retry) and leaves the waiting clients hanging, where ``accept_all`` turns them away.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from nbio_helpers.connection import accept_all, echo_upper
from nbio_helpers.events import ACCEPT, CLOSE, EOF, RECV, SEND
from nbio_helpers.server import Server

DROP_SIZE = 256 * 1024
"""How many bytes one read takes when dropping what a client sends after a graceful stop."""


class AsyncioServer(Server):
    """Serves each client with asyncio streams on a private :class:`asyncio.SelectorEventLoop`."""

    model = "asyncio"
    taught_in = (5, 4)
    concurrent = nonblocking = waits_for_readiness = True
    max_connections = None
    backpressure = True  # the transport's water marks: await drain()
    logs_connections = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: set[asyncio.Task[None]] = set()

    def serve(self) -> None:
        loop = asyncio.SelectorEventLoop()  # a selector loop on every OS (not Proactor)
        try:
            loop.run_until_complete(self._main(loop))
        finally:
            loop.close()

    async def _main(self, loop: asyncio.AbstractEventLoop) -> None:
        woken = asyncio.Event()
        listener = self.listener
        assert listener is not None  # serve() runs only once started
        # stop() writes to the socketpair; the loop watches it like any socket.
        loop.add_reader(self.waker, self._on_wake, woken)
        listener.setblocking(False)
        loop.add_reader(listener, self._accept, loop)
        try:
            while not self.stopping:
                await woken.wait()
                woken.clear()
        finally:
            loop.remove_reader(listener)  # accept no more (before stop() closes it)
            await self._end_clients(woken)
            loop.remove_reader(self.waker)

    def _on_wake(self, woken: asyncio.Event) -> None:
        self.drain_waker()
        woken.set()

    def _accept(self, loop: asyncio.AbstractEventLoop) -> None:
        for sock in accept_all(self, make=lambda sock, server: sock):
            task = loop.create_task(self._client(sock))
            self._clients.add(task)
            task.add_done_callback(self._clients.discard)

    async def _client(self, sock: socket.socket) -> None:
        """One accepted client: its socket wrapped in a pair of streams, then :meth:`handle`."""
        try:
            try:
                reader, writer = await asyncio.open_connection(sock=sock, limit=self.recv_size)
            except BaseException:
                sock.close()
                raise
            await self.handle(reader, writer)
        finally:
            self.forget(sock)  # the transport closes it, not stop()

    async def _end_clients(self, woken: asyncio.Event) -> None:
        """Cancel every client's handler, and wait for their streams to close.

        Cancelling loses no byte that a handler has read: it can only happen at an ``await``,
        and a handler awaits either ``reader.read()`` (nothing read yet) or ``drain()`` (the
        reply is in the transport's buffer already). In a graceful stop, each stream then
        closes politely (see :meth:`close_stream`) until the grace period ends or ``stop()``
        says to stop at once (through the waker), and then every one is closed at once.
        """
        for task in self._clients:
            task.cancel()
        while self._clients and self.in_grace_period:
            woken.clear()
            wake = asyncio.ensure_future(woken.wait())
            await asyncio.wait(
                [*self._clients, wake],
                timeout=self.grace_left(),
                return_when=asyncio.FIRST_COMPLETED,
            )
            wake.cancel()
        for task in self._clients:
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        await asyncio.sleep(0)  # let the transports just closed close their sockets

    def open_connections(self) -> int:
        return len(self._clients)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Echo one client: ``await`` wherever the blocking model would block."""
        cid = self.new_conn_id()  # the transport owns the socket and closes it
        self.events.record(ACCEPT, cid)
        # Backpressure: the water marks of every model (drain() waits above high, until low).
        writer.transport.set_write_buffer_limits(high=self.high_water, low=self.low_water)
        reason = "peer closed"
        try:
            while data := await reader.read(self.recv_size):
                self.events.record(RECV, cid, len(data))
                writer.write(echo_upper(data))
                await writer.drain()  # waits while the output buffer is too full
                self.events.record(SEND, cid, len(data))
            self.events.record(EOF, cid)
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError) as exc:
            reason = type(exc).__name__
        except asyncio.CancelledError:
            reason = "server stopping"
        finally:
            await self.close_stream(reader, writer, cid, reason)

    async def close_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cid: int, reason: str
    ) -> None:
        """Close one client's stream and record why.

        In a graceful stop the close is polite: our EOF once the reply is all sent, then what
        the client still sends is dropped until its own EOF (closing with unread input would
        reset the connection, and lose the end of the reply), within the grace period.
        Stopped at once, the connection is aborted.
        """
        try:
            if self.in_grace_period and not writer.is_closing():
                await asyncio.wait_for(_end_politely(reader, writer), self.grace_left())
        except (asyncio.TimeoutError, OSError):
            pass
        finally:
            if self.stopping and not self.in_grace_period:
                writer.transport.abort()
            else:
                writer.close()
            self.events.record(CLOSE, cid, detail=reason)


async def _end_politely(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    if writer.can_write_eof():
        writer.write_eof()  # sent once the transport's buffer is
    while await reader.read(DROP_SIZE):
        pass


__all__ = [
    "DROP_SIZE",
    "AsyncioServer",
]
