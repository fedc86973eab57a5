"""asyncio, hands-on (notebook 05, section 4): ``drain()`` as backpressure, and what one
blocking call in a handler does to every client of the loop.

Usage (in a notebook cell: a cell that contains ``await`` runs on the kernel's own loop)::

    server = WatchedAsyncioServer(high_water=256 * 1024).start()
    ...                                  # flood it: server.events has PAUSE / RESUME
    server.peak_output                   # the largest the transport's buffer was, in bytes

    with SlowCallServer(block=0.2) as server:               # time.sleep() in the handler
        slow, slowest = await freeze_probe(server.address)  # every pinger waited ~0.2 s
    with SlowCallServer(block=0.2, in_thread=True) as server:   # asyncio.to_thread()
        slow, slowest = await freeze_probe(server.address)  # nobody else waited

Only public asyncio API is used (``StreamWriter.transport``, ``get_write_buffer_size()``,
``set_write_buffer_limits()``, ``asyncio.to_thread()``).
"""

from __future__ import annotations

import asyncio
import time

from nbio_helpers.connection import echo_upper
from nbio_helpers.events import ACCEPT, EOF, PAUSE, RECV, RESUME, SEND

# ---- what notebook 05 also uses, from where it lives (so the notebook imports from here)
from nbio_helpers.lessons.backpressure import Flooder, buffer_series, plot_backpressure
from nbio_helpers.lessons.loop_view import WatchedSelector, key_callbacks, selector_loop
from nbio_helpers.lessons.readiness import CountingSelector, readiness_reports
from nbio_helpers.measure import (
    compare,
    comparison_relations,
    comparison_table,
    plot_comparison,
    print_relations,
    spare_cores,
)
from nbio_helpers.measure.scaling import available_selectors, measure_scaling, plot_scaling
from nbio_helpers.models.asyncio_model import AsyncioServer
from nbio_helpers.models.selectors_model import READ

__all__ = [
    "PING",
    "READ",
    "CountingSelector",
    "Flooder",
    "SlowCallServer",
    "WatchedAsyncioServer",
    "WatchedSelector",
    "available_selectors",
    "buffer_series",
    "compare",
    "comparison_relations",
    "comparison_table",
    "freeze_probe",
    "key_callbacks",
    "measure_scaling",
    "pinger",
    "plot_backpressure",
    "plot_comparison",
    "plot_scaling",
    "print_relations",
    "readiness_reports",
    "selector_loop",
    "slow_request",
    "spare_cores",
]


class WatchedAsyncioServer(AsyncioServer):
    """:class:`~nbio_helpers.models.AsyncioServer` whose handler also records when
    ``drain()`` has to wait.

    Events, besides the usual ones: ``PAUSE`` when a ``write()`` leaves more than
    ``high_water`` bytes in the transport's buffer (``nbytes`` = that size), so that the next
    ``drain()`` waits; ``RESUME`` when that ``drain()`` returns (``nbytes`` = the buffer then:
    at most the low-water mark, a quarter of the high one by default).
    :attr:`pending_output` holds ``(time.monotonic(), bytes in the transport's buffer)``
    after every ``write()``.
    """

    model = "asyncio-watched"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pending_output: list[tuple[float, int]] = []

    @property
    def peak_output(self) -> int:
        """The most bytes the transport's buffer held after a ``write()`` (0 before any)."""
        return max((size for _, size in self.pending_output), default=0)

    # Deliberate teaching copy of AsyncioServer.handle, with the PAUSE/RESUME notes added:
    # notebook 05 shows the two side by side.
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Echo one client, as AsyncioServer does, noting when ``drain()`` must wait."""
        cid = self.new_conn_id()
        self.events.record(ACCEPT, cid)
        transport = writer.transport
        transport.set_write_buffer_limits(high=self.high_water, low=self.low_water)
        reason = "peer closed"
        try:
            while data := await reader.read(self.recv_size):
                self.events.record(RECV, cid, len(data))
                writer.write(echo_upper(data))  # sends what it can now, buffers the rest
                pending = transport.get_write_buffer_size()
                self.pending_output.append((time.monotonic(), pending))
                must_wait = pending > self.high_water  # the transport has paused us
                if must_wait:
                    self.events.record(PAUSE, cid, pending)
                await writer.drain()  # waits only while paused
                if must_wait:
                    self.events.record(RESUME, cid, transport.get_write_buffer_size())
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


class SlowCallServer(AsyncioServer):
    """The asyncio echo server, where a message that starts with ``b"slow"`` first makes a
    blocking call of ``block`` seconds (``time.sleep``, standing for a library that blocks).

    Parameters
    ----------
    block:
        Seconds the blocking call takes.
    in_thread:
        False: the handler makes the call itself, and the whole loop waits (every client).
        True: ``await asyncio.to_thread(...)``: a thread of the loop's default pool waits,
        and the loop goes on serving the others.
    """

    model = "asyncio-slow-call"
    logs_connections = False  # its handler records ACCEPT and CLOSE only

    def __init__(self, *args, block: float = 0.2, in_thread: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.block = block
        self.in_thread = in_thread

    def blocking_call(self) -> None:
        """Stands for a call into a library that blocks (a database driver, say)."""
        time.sleep(self.block)

    # Deliberate teaching copy of AsyncioServer.handle, with the slow call added: notebook 05
    # shows it to point at the one line that stalls the loop.
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Echo one client; a message starting with ``b"slow"`` first makes the slow call."""
        cid = self.new_conn_id()
        self.events.record(ACCEPT, cid)
        reason = "peer closed"
        try:
            while data := await reader.read(self.recv_size):
                if data.startswith(b"slow"):
                    if self.in_thread:
                        await asyncio.to_thread(self.blocking_call)  # a pool thread waits
                    else:
                        self.blocking_call()  # this thread waits: so does the loop
                writer.write(echo_upper(data))
                await writer.drain()
        except (ConnectionError, OSError) as exc:
            reason = type(exc).__name__
        except asyncio.CancelledError:
            reason = "server stopping"
        finally:
            await self.close_stream(reader, writer, cid, reason)

    async def _main(self, loop) -> None:
        try:
            await super()._main(loop)
        finally:
            await loop.shutdown_default_executor()  # no pool thread outlives the server


PING = b"ping"


async def pinger(address, seconds: float, every: float = 0.01, timeout: float = 5.0) -> float:
    """A client on the running loop: sends ``b"ping"`` every ``every`` seconds for
    ``seconds``, each time waiting for its echo (at most ``timeout`` seconds).

    Returns its slowest round trip, in seconds. Raises ``ValueError`` on a wrong echo.
    """
    reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), timeout)
    slowest = 0.0
    try:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(PING)
            await writer.drain()
            echo = await asyncio.wait_for(reader.readexactly(len(PING)), timeout)
            if echo != PING.upper():
                raise ValueError(f"wrong echo {echo!r}")
            slowest = max(slowest, time.perf_counter() - start)
            await asyncio.sleep(every)
    finally:
        writer.close()
        await writer.wait_closed()
    return slowest


async def slow_request(address, after: float = 0.1, timeout: float = 5.0) -> float:
    """After ``after`` seconds, one request that starts with ``b"slow"``; returns the seconds
    its echo took (at most ``timeout``)."""
    await asyncio.sleep(after)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), timeout)
    message = b"slow, please"
    try:
        start = time.perf_counter()
        writer.write(message)
        await writer.drain()
        echo = await asyncio.wait_for(reader.readexactly(len(message)), timeout)
        if echo != message.upper():
            raise ValueError(f"wrong echo {echo!r}")
        return time.perf_counter() - start
    finally:
        writer.close()
        await writer.wait_closed()


async def freeze_probe(
    address, clients: int = 5, seconds: float = 0.4, timeout: float = 10.0
) -> tuple[float, list[float]]:
    """``clients`` :func:`pinger` clients for ``seconds``, while one :func:`slow_request`
    is made 0.1 s in, all at once on the running loop.

    Returns ``(seconds the slow request took, [each pinger's slowest round trip])``. Bounded
    by ``timeout`` (``asyncio.TimeoutError`` beyond it). Whatever happens (an error, the
    timeout, the cell interrupted), every client is cancelled and its connection closed
    before this returns or raises: no task is left on the loop.
    """
    tasks = [asyncio.ensure_future(slow_request(address))]
    tasks += [asyncio.ensure_future(pinger(address, seconds)) for _ in range(clients)]
    try:
        _, pending = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()  # those already done are not affected
        await asyncio.gather(*tasks, return_exceptions=True)
    failed = [
        exc for task in tasks if not task.cancelled() and (exc := task.exception()) is not None
    ]
    if failed:
        raise failed[0]
    if pending:
        raise asyncio.TimeoutError(f"the clients did not finish within {timeout:g} s")
    return tasks[0].result(), [task.result() for task in tasks[1:]]
