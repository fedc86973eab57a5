"""The server models, by name. Each is a :class:`~nbio_helpers.server.Server` subclass.

:data:`MODELS` is derived, never edited: every module of this package is imported, and each
class defined there that sets its own ``model`` name and ``taught_in`` (see "Capabilities" in
:class:`~nbio_helpers.server.Server`) is a model. Adding a model is adding a module here with
one such class; the command line, the bench, the comparison of notebook 05, its exercise and
the conformance suite then take it up by themselves.

Why the package, and not every subclass (``__init_subclass__``): many servers that are not
models subclass one (the demos of the notebooks, the exercises' servers, the bench's peers, a
learner's subclass in a notebook cell, a test's). A registry filled by subclassing would let
any of them change :data:`MODELS` (and the command line's choices) as a side effect of being
defined; here, only a module of this package can.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

from nbio_helpers.models.asyncio_model import AsyncioServer
from nbio_helpers.models.blocking import BlockingServer
from nbio_helpers.models.polling import PollingServer
from nbio_helpers.models.select_model import FD_SETSIZE, SelectServer
from nbio_helpers.models.selectors_model import SelectorsServer
from nbio_helpers.models.tasks_model import TasksServer
from nbio_helpers.models.threads import ThreadsServer
from nbio_helpers.server import Server


def find_models() -> dict[str, type[Server]]:
    """Model name -> class, for every model of this package, in teaching order: each
    ``Server`` subclass with a ``model`` and a ``taught_in`` of its own, defined in a module
    of this package (:data:`MODELS` is what it found at import; a test that adds a module
    calls it again).

    Raises
    ------
    TypeError
        Two models have the same name.
    """
    found: dict[str, type[Server]] = {}
    for info in pkgutil.iter_modules(__path__, f"{__name__}."):
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if not (
                inspect.isclass(cls)
                and issubclass(cls, Server)
                and cls.__module__ == module.__name__
                and "model" in vars(cls)
                and cls.taught_in is not None
            ):
                continue
            if cls.model in found:
                raise TypeError(
                    f"two models are named {cls.model!r}: {found[cls.model].__qualname__} "
                    f"and {cls.__qualname__}"
                )
            found[cls.model] = cls
    return dict(sorted(found.items(), key=lambda item: (item[1].taught_in, item[0])))


MODELS: dict[str, type[Server]] = find_models()
"""Model name -> server class, in the order the series teaches them (``taught_in``)."""


def models_with(**capabilities: object) -> list[str]:
    """The names of the models whose capabilities have these values, in teaching order.

    >>> models_with(concurrent=False)
    ['blocking']
    >>> models_with(waits_for_readiness=True, max_connections=None)
    ['selectors', 'asyncio', 'tasks']

    An unknown capability raises ``AttributeError`` (a typo must not select nothing).
    """
    for key in capabilities:
        getattr(Server, key)
    return [
        name
        for name, cls in MODELS.items()
        if all(getattr(cls, key) == value for key, value in capabilities.items())
    ]


def start_server(model: str = "select", **options: Any) -> Server:
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
    "find_models",
    "models_with",
    "start_server",
]
