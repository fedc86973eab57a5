"""nbio_helpers: the servers, clients, measurements, plots and widgets of the nbio series.

Start a server model in a background thread and be its client from notebook cells::

    from nbio_helpers import start_server, request, stop_all
    server = start_server("select", name="demo")
    request(server.address, b"hello")      # b'HELLO'
    stop_all()                              # nothing left running

The names below are the public API. A notebook imports from three places at most: this
package, ``nbio_helpers.lessons.nbNN`` (what notebook NN shows and measures) and
``nbio_helpers.exercises.nbNN`` (its checkers).

Where the code of each notebook lives (one hop from the notebook):

===========  ================================================================================
notebook     modules
===========  ================================================================================
00           :mod:`~nbio_helpers.ui.notebook` (setup, finish)
01           :mod:`~nbio_helpers.models.blocking`, :mod:`~nbio_helpers.tracing`,
             :mod:`~nbio_helpers.lessons.nb01` (copy time), :mod:`~nbio_helpers.ui.widgets`
02           :mod:`~nbio_helpers.lessons.nb02` (kernel buffers), :mod:`~nbio_helpers.clients`
03           :mod:`~nbio_helpers.lessons.nb03` (the classic polling server and its flaws),
             :mod:`~nbio_helpers.models.polling`, :mod:`~nbio_helpers.measure`
04           :mod:`~nbio_helpers.models.select_model`, :mod:`~nbio_helpers.connection`,
             :mod:`~nbio_helpers.protocol`, :mod:`~nbio_helpers.lessons.nb04` (select demos)
05           :mod:`~nbio_helpers.models.selectors_model`, :mod:`~nbio_helpers.models.asyncio_model`,
             :mod:`~nbio_helpers.lessons.nb05`, :mod:`~nbio_helpers.measure.scaling`
06           :mod:`~nbio_helpers.loop` (the event loop from scratch),
             :mod:`~nbio_helpers.framing`, :mod:`~nbio_helpers.models.tasks_model`
===========  ================================================================================

The layers, from the bottom: :mod:`~nbio_helpers.protocol` (sans-IO state: the echo buffer and
its water marks, the line framer), :mod:`~nbio_helpers.connection` (the socket shim around
it), :mod:`~nbio_helpers.server` (the lifecycle and the one stop rule), :mod:`~nbio_helpers.models`
(the loops), then :mod:`~nbio_helpers.measure`, :mod:`~nbio_helpers.ui`,
:mod:`~nbio_helpers.exercises`, :mod:`~nbio_helpers.bench` and :mod:`~nbio_helpers.cli`.

Importing the package starts nothing and opens nothing; the notebook helpers (plots, widgets)
are imported when first used, so that the command line does not load matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

from nbio_helpers.clients import (
    LoadResult,
    close_with_reset,
    connect,
    recv_exactly,
    request,
    run_load,
)
from nbio_helpers.connection import Connection, accept_all
from nbio_helpers.cpu import ThreadCPU, cpu_share
from nbio_helpers.events import (
    ACCEPT,
    CLOSE,
    EOF,
    PAUSE,
    RECV,
    RECV_CALL,
    RESUME,
    SEND,
    WAKEUP,
    WOULD_BLOCK,
    Event,
    EventLog,
)
from nbio_helpers.models import (
    FD_SETSIZE,
    MODELS,
    AsyncioServer,
    BlockingServer,
    PollingServer,
    SelectorsServer,
    SelectServer,
    TasksServer,
    ThreadsServer,
    models_with,
    start_server,
)
from nbio_helpers.protocol import EchoProtocol, WaterMarks
from nbio_helpers.registry import running_servers, stop_all
from nbio_helpers.server import (
    HIGH_WATER,
    Server,
    ServerStoppedError,
    ServerStopTimeout,
    wait_until,
)
from nbio_helpers.tracing import TracedSocket

__version__ = "0.2.0"

_LAZY = {  # name -> module: imported on first use (matplotlib, ipywidgets, IPython)
    "setup_notebook": "nbio_helpers.ui.notebook",
    "finish": "nbio_helpers.ui.notebook",
    "show_source": "nbio_helpers.ui.notebook",
    "plot_timeline": "nbio_helpers.ui.plots",
    "ClientConsole": "nbio_helpers.ui.widgets",
}


def __getattr__(name: str) -> Any:
    """The notebook helpers, imported when first asked for (PEP 562)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nbio_helpers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ACCEPT",
    "CLOSE",
    "EOF",
    "FD_SETSIZE",
    "HIGH_WATER",
    "MODELS",
    "PAUSE",
    "RECV",
    "RECV_CALL",
    "RESUME",
    "SEND",
    "WAKEUP",
    "WOULD_BLOCK",
    "AsyncioServer",
    "BlockingServer",
    "ClientConsole",
    "Connection",
    "EchoProtocol",
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
    "TracedSocket",
    "WaterMarks",
    "accept_all",
    "close_with_reset",
    "connect",
    "cpu_share",
    "finish",
    "models_with",
    "plot_timeline",
    "recv_exactly",
    "request",
    "run_load",
    "running_servers",
    "setup_notebook",
    "show_source",
    "start_server",
    "stop_all",
    "wait_until",
]
