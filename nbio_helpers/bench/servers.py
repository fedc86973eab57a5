"""Every server the benchmark runs: the models, and two peers written plainly.

The peers are the echo server as a user would write it instead of using this package: with
asyncio streams, and with ``socketserver.ThreadingTCPServer``. No event log, no tuning; only
the start/stop glue of :class:`~nbio_helpers.server.Server` around them, so that the bench
starts and stops every server the same way::

    with SERVERS["ref-asyncio"][0]() as server:
        request(server.address, b"hi")          # b"HI"
"""

from __future__ import annotations

import asyncio
import functools
import socketserver
import threading

from nbio_helpers.bench.asyncio_clients import ClientTasks
from nbio_helpers.models import MODELS
from nbio_helpers.server import Server


class AsyncioStreamsReference(Server):
    """The echo server as anyone would write it with asyncio streams: the peer to beat.

    No event log, no backpressure settings, the default event loop; only the start/stop glue
    of :class:`~nbio_helpers.server.Server` around it.

    Stopping with clients connected: since Python 3.12, ``async with server:`` waits on the
    way out until every client's connection is gone, so the clients are dropped first
    (see :mod:`nbio_helpers.bench.asyncio_clients`).
    """

    model = "ref-asyncio"
    concurrent = True
    nonblocking = True
    waits_for_readiness = True
    max_connections = None
    backpressure = True  # await drain()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._clients = ClientTasks()

    def serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self.stopping:  # stop() came before the loop existed (see on_stop)
            return
        self.listener.setblocking(False)
        echo = functools.partial(_echo_stream, sample=self.cpu.sample)
        server = await asyncio.start_server(self._clients.tracking(echo), sock=self.listener)
        async with server:
            await self._stop_event.wait()
            await self._clients.drop(server)

    def on_stop(self) -> None:
        loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None:
            try:
                loop.call_soon_threadsafe(stop_event.set)
            except RuntimeError:
                pass  # the loop has already finished


async def _echo_stream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sample=lambda: None
) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data.upper())
            await writer.drain()
            sample()  # where CPU time is self-reported (macOS)
    except ConnectionError:
        pass
    finally:
        writer.close()


class _NbioTCPServer(socketserver.ThreadingTCPServer):
    """socketserver's threading server, holding the :class:`ThreadingTCPReference` it runs for."""

    nbio: ThreadingTCPReference


class _EchoHandler(socketserver.BaseRequestHandler):
    server: _NbioTCPServer

    def setup(self):
        self.server.nbio.cpu.enter()
        self.cid = self.server.nbio.track(self.request)  # so that stop() shuts it down

    def handle(self):
        sample = self.server.nbio.cpu.sample  # where CPU time is self-reported (macOS)
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data.upper())
                sample()
        except OSError:
            pass

    def finish(self):
        self.server.nbio.close_connection(self.request, self.cid, "handler finished")
        self.server.nbio.cpu.exit()


class ThreadingTCPReference(Server):
    """The echo server as anyone would write it with ``socketserver.ThreadingTCPServer``."""

    model = "ref-socketserver"
    concurrent = True
    max_connections = None
    backpressure = True  # sendall() blocks the handler's thread

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._srv = None
        self._srv_lock = threading.Lock()

    def serve(self) -> None:
        srv = _NbioTCPServer(self.address, _EchoHandler, bind_and_activate=False)
        srv.socket.close()
        srv.socket = self.listener  # already bound and listening
        srv.nbio = self
        # The lock makes "stop() before serve_forever()" safe: shutdown() waits for
        # serve_forever(), so either on_stop sees no server yet, or serve_forever will run.
        with self._srv_lock:
            if self.stopping:
                return
            self._srv = srv
        srv.serve_forever(poll_interval=0.5)

    def on_stop(self) -> None:
        # socketserver's loop does not watch the waker: shutdown() tells it to end, and waits
        # until it has; server_close() joins the handler threads, which end soon, since stop()
        # has shut down every socket they own (each handler owns its socket in setup()).
        with self._srv_lock:
            srv = self._srv
        if srv is not None:
            srv.shutdown()
            srv.server_close()


def _counters_only(model: str, **options):
    """A factory of ``model`` servers that keep counters but no event list (cheaper)."""
    return functools.partial(MODELS[model], record_events=False, **options)


VARIANTS = {"polling": {"polling-1ms": {"interval": 0.001}}}
"""Models the bench also runs with other settings: model -> {row name: options}."""

REFERENCES = (AsyncioStreamsReference, ThreadingTCPReference)
"""The peers, after the models."""


def _servers() -> dict:
    servers = {}
    for model in MODELS:  # every model, in teaching order, each variant after its model
        servers[model] = (_counters_only(model), "model")
        for name, options in VARIANTS.get(model, {}).items():
            servers[name] = (_counters_only(model, **options), "model")
    for peer in REFERENCES:
        servers[peer.model] = (peer, "reference")
    return servers


SERVERS = _servers()
"""Name -> (factory, kind): every model of :data:`~nbio_helpers.models.MODELS` in teaching
order (with its :data:`VARIANTS`), then the peers (:data:`REFERENCES`)."""

REFERENCE = "ref-asyncio"
"""The peer every throughput is compared with."""


__all__ = [
    "REFERENCE",
    "REFERENCES",
    "SERVERS",
    "VARIANTS",
    "AsyncioStreamsReference",
    "ThreadingTCPReference",
]
