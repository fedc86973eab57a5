"""The first and the last cell of every notebook, and showing the package's real code.

Setup cell::

    from nbio_helpers.ui.notebook import setup_notebook, show_source, finish
    setup_notebook()

Show the loop that the tests run (not a copy of it)::

    show_source(PollingServer.serve)

Last cell::

    finish()        # prints "servers running: none" and "nbio threads alive: 0"
"""

from __future__ import annotations

import inspect
import textwrap
import threading
import time
from typing import TYPE_CHECKING, Any

from nbio_helpers.measure.process import running_client_processes, stop_client_processes
from nbio_helpers.registry import disconnect_clients, running_servers, stop_all

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # the names rcParams accepts

FIGSIZE = (9.0, 3.2)
"""Default figure size (inches): wide and short, as timelines are."""

THREAD_PREFIX = "nbio-"
"""Every thread the package starts is named ``nbio-…``; :func:`finish` checks none is left."""

_STYLE: dict[RcKeyType, Any] = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linestyle": "-",
    "legend.frameon": False,
    "legend.fontsize": 9,
}


def setup_notebook(figsize: tuple[float, float] = FIGSIZE) -> None:
    """Set the plotting style and default figure size for the series. Prints nothing.

    Works with the inline backend of Jupyter and with Agg (tests, nbval, no display).
    pyplot is imported first, so that the inline backend's own defaults are applied before,
    not after, these settings.
    """
    import matplotlib.pyplot as plt

    plt.rcParams.update(_STYLE)
    plt.rcParams["figure.figsize"] = tuple(figsize)


def show_source(obj):
    """The source code of a function, method or class, rendered with Python highlighting.

    Returns an ``IPython.display.Code`` (make it the last expression of a cell to show it).
    What the notebook shows is the code the tests run, read from the package itself.
    """
    from IPython.display import Code

    source = textwrap.dedent(inspect.getsource(obj))
    return Code(source.rstrip("\n"), language="python")


def nbio_threads() -> list[threading.Thread]:
    """The alive threads started by this package (named ``nbio-…``)."""
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX) and t.is_alive()]


def finish(timeout: float = 5.0) -> None:
    """Stop every server, then prove that nothing is left running.

    Stops every registered server, closes every client console's connection, stops the
    client process of the measurements (:mod:`nbio_helpers.measure.process`), joins every
    ``nbio-…`` thread (``timeout`` seconds in all), then prints exactly::

        servers running: none
        nbio threads alive: 0

    Raises ``AssertionError`` (naming what is left) if a server, a client process or a
    thread survived.
    """
    stop_all(timeout=timeout)
    stop_client_processes()
    disconnect_clients()  # the widgets' client consoles
    deadline = time.monotonic() + timeout
    for thread in nbio_threads():
        thread.join(max(0.0, deadline - time.monotonic()))
    left = sorted(running_servers())
    assert not left, f"servers still running: {', '.join(left)}"
    alive = sorted(t.name for t in nbio_threads())
    assert not alive, f"nbio threads still alive: {', '.join(alive)}"
    processes = running_client_processes()
    assert not processes, f"client processes still running: {processes}"
    print("servers running: none")
    print("nbio threads alive: 0")


__all__ = ["FIGSIZE", "finish", "nbio_threads", "setup_notebook", "show_source"]
