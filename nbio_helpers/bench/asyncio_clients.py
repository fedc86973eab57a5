"""Stopping an asyncio streams server with clients connected, the same on Python 3.10-3.13.

Why this is needed:

* Since Python 3.12, ``asyncio.Server.wait_closed()`` (which ``async with server:`` awaits on
  the way out) returns only once every client connection is gone. A client that stays
  connected keeps the server from stopping, forever.
* ``StreamWriter.close()`` closes a transport only after its pending output is sent: a client
  that never reads keeps its socket open, and the loop ends with the socket still open.
* A connection accepted a moment before the stop has a transport but no handler task yet;
  cancelling the task that is setting it up loses the socket (nothing closes it).

:class:`ClientTasks` tracks each client's handler task and writer. :meth:`ClientTasks.drop`
cancels every handler and aborts its transport (closed at once, pending output dropped),
waits for the connections still being set up to get their handler and drops those too, and
closes the server when no connection is half set up.
Python 3.13 has ``Server.abort_clients()`` for the transports; this works on every version
and also ends the handler tasks.

Usage::

    clients = ClientTasks()
    server = await asyncio.start_server(clients.tracking(handle), sock=listener)
    ...                              # until asked to stop
    await clients.drop(server)       # server closed, every client gone
"""

from __future__ import annotations

import asyncio
import functools


class ClientTasks:
    """The handler task and writer of every connected client of one asyncio server."""

    def __init__(self) -> None:
        self._writers: dict[asyncio.Task, asyncio.StreamWriter] = {}

    def tracking(self, handler):
        """Wrap ``handler(reader, writer)`` (a coroutine function) so that its clients are
        tracked; pass the result to ``asyncio.start_server``."""

        @functools.wraps(handler)
        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
            task = asyncio.current_task()
            assert task is not None  # a handler of asyncio.start_server runs in a task
            self._writers[task] = writer
            try:
                return await handler(reader, writer)
            except asyncio.CancelledError:
                # drop() cancelled it: end the task quietly (Python 3.12.1 logs a handler
                # task that ends cancelled as "Exception in callback").
                return None
            finally:
                self._writers.pop(task, None)

        return tracked

    def __len__(self) -> int:
        return len(self._writers)

    async def drop(self, server: asyncio.AbstractServer, timeout: float = 2.0) -> bool:
        """Close ``server`` and drop every client: cancel its handler, abort its connection.

        Call it in the server's loop when asked to stop. A connection being accepted right
        now first gets its handler, then is dropped too; ``server`` is closed once no
        connection is half accepted (a transport made after ``server.close()`` loses its
        socket on Python 3.10-3.12). Returns True when no other task is left on the loop,
        False if some were still running after ``timeout`` seconds (``asyncio.run`` cancels
        those; the server is closed either way).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        me = asyncio.current_task()
        try:
            while True:
                for task, writer in list(self._writers.items()):
                    task.cancel()  # the handler sees CancelledError at its await
                    writer.transport.abort()  # closed now, even with replies unsent
                others = asyncio.all_tasks(loop) - {me}
                left = deadline - loop.time()
                if not others or left <= 0:
                    break
                # Wait for (never cancel) the rest: a connection being set up gets its
                # handler task, which the next round drops.
                await asyncio.wait(others, timeout=min(0.05, left))
        finally:
            server.close()  # no await between the check above and this: nobody slips in
        await asyncio.sleep(0)  # let the aborted transports close their sockets
        return not others


__all__ = ["ClientTasks"]
