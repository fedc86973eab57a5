"""nbio_helpers: the servers, clients, measurements, plots and widgets of the nbio series.

Start a server model in a background thread and be its client from notebook cells::

    from nbio_helpers import start_server, request, stop_all
    server = start_server("select", name="demo")
    request(server.address, b"hello")      # b'HELLO'
    stop_all()                              # nothing left running
"""

from .clients import LoadResult, connect, recv_exactly, request, run_load
from .cpu import ThreadCPU, cpu_share
from .events import Event, EventLog
from .models import (
    FD_SETSIZE,
    MODELS,
    AsyncioServer,
    BlockingServer,
    PollingServer,
    SelectorsServer,
    SelectServer,
    TasksServer,
    ThreadsServer,
    start_server,
)
from .registry import running_servers, stop_all
from .server import HIGH_WATER, Server, ServerStoppedError, ServerStopTimeout

__version__ = "0.1.0"

__all__ = [
    "FD_SETSIZE",
    "HIGH_WATER",
    "MODELS",
    "AsyncioServer",
    "BlockingServer",
    "Event",
    "EventLog",
    "LoadResult",
    "PollingServer",
    "SelectServer",
    "SelectorsServer",
    "Server",
    "ServerStopTimeout",
    "ServerStoppedError",
    "TasksServer",
    "ThreadCPU",
    "ThreadsServer",
    "connect",
    "cpu_share",
    "recv_exactly",
    "request",
    "run_load",
    "running_servers",
    "start_server",
    "stop_all",
]
