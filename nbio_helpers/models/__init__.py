"""The server models, by name. Each is a :class:`~nbio_helpers.server.Server` subclass."""

from .asyncio_model import AsyncioServer
from .blocking import BlockingServer
from .polling import PollingServer
from .select_model import FD_SETSIZE, SelectServer
from .selectors_model import SelectorsServer
from .tasks_model import TasksServer
from .threads import ThreadsServer

MODELS = {
    "blocking": BlockingServer,
    "threads": ThreadsServer,
    "polling": PollingServer,
    "select": SelectServer,
    "selectors": SelectorsServer,
    "asyncio": AsyncioServer,
    "tasks": TasksServer,
}
"""Model name -> server class, in the order the series teaches them."""


def start_server(model: str = "select", **options):
    """Start a server of the named model in the background and return it.

    ``options`` go to the model's class (``host``, ``port``, ``name``, ``interval`` for
    ``polling``, ``delay`` for ``blocking``...). Starting one with the ``name`` of a running
    server stops that one first, so re-running a notebook cell leaves one server behind.

    >>> server = start_server("polling", interval=0.01, name="demo")
    >>> server.address      # doctest: +SKIP
    ('127.0.0.1', 54321)
    >>> server.stop()
    """
    try:
        cls = MODELS[model]
    except KeyError:
        raise ValueError(f"unknown model {model!r}; choose one of: {', '.join(MODELS)}") from None
    return cls(**options).start()


__all__ = [
    "FD_SETSIZE",
    "MODELS",
    "AsyncioServer",
    "BlockingServer",
    "PollingServer",
    "SelectServer",
    "SelectorsServer",
    "TasksServer",
    "ThreadsServer",
    "start_server",
]
