"""The busy loop and its neighbours: what a busy-polling thread does to the code beside it.

::

    result = neighbour_slowdown("system calls")   # about 0.5 s
    result.slowdown            # Spread: each trial's time beside the busy loop / alone
    result.rounds_beside       # the busy loop's rounds per second meanwhile

A busy-polling server thread never sleeps. Python threads share one GIL, and CPython hands
it over in two ways (``Python/ceval_gil.c``): a thread gives it up around every blocking
system call (``recv``, ``accept``, ``stat``...), and a thread that waited
``sys.getswitchinterval()`` (5 ms) for it asks the holder to let go. So:

* code beside the busy loop that makes **system calls** loses the GIL at each one, to the
  busy loop, and waits to get it back: it runs several times slower (``"system calls"``);
  a client measuring latency from the kernel is such code, which is why every latency here
  is measured from another process;
* **pure Python** code keeps the GIL for 5 ms at a time: it hardly slows down, and it is the
  busy loop that starves instead (its rounds per second collapse, and with them its
  latency) (``"python"``);
* other **processes** lose the core the busy loop takes, when cores are scarce.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time

from nbio_helpers.measure.idle import loop_rounds
from nbio_helpers.measure.quiet import gc_paused
from nbio_helpers.measure.stats import Spread

__all__ = ["WORKLOADS", "NeighbourSlowdown", "neighbour_slowdown"]


def python_work(n: int = 400_000) -> int:
    """Pure Python, no system call: a sum of squares (about 20 ms)."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def system_call_work(n: int = 4_000) -> int:
    """Small system calls that release the GIL: ``os.stat`` of this folder, ``n`` times."""
    size = 0
    for _ in range(n):
        size += os.stat(os.curdir).st_nlink
    return size


WORKLOADS = {"python": python_work, "system calls": system_call_work}
"""Name -> the neighbour's work (a callable taking no argument)."""


@dataclasses.dataclass(frozen=True)
class NeighbourSlowdown:
    """What :func:`neighbour_slowdown` measured (times in seconds)."""

    work: str
    alone: Spread
    """Time of one run of the work with no server running."""
    beside: Spread
    """Time of one run while the busy-polling server runs."""
    slowdown: Spread
    """Each trial's ``beside`` over its ``alone`` (the mean of the runs before and after)."""
    rounds_alone: Spread
    """The busy loop's rounds per second while this thread only sleeps."""
    rounds_beside: Spread
    """The busy loop's rounds per second while the work runs beside it."""


def _default_busy_server():
    from nbio_helpers.models.polling import PollingServer

    return PollingServer(interval=0, record_events=False, name="neighbour-busy")


def _rate(server, run) -> tuple[float, float]:
    """Run ``run()`` and return (its wall time, the server's rounds per second meanwhile)."""
    rounds0, t0 = loop_rounds(server), time.perf_counter()
    run()
    elapsed = time.perf_counter() - t0
    return elapsed, (loop_rounds(server) - rounds0) / elapsed


def neighbour_slowdown(
    work="python", *, trials: int = 5, window: float = 0.02, make_server=None
) -> NeighbourSlowdown:
    """Time ``work`` in the calling thread without, then with, a busy-polling server thread.

    Parameters
    ----------
    work:
        A name of :data:`WORKLOADS` (``"python"``, ``"system calls"``) or a callable.
    trials:
        Each trial times the work alone, starts a busy :class:`PollingServer`, measures its
        rounds per second for ``window`` seconds while this thread sleeps, times the work
        beside it, stops it, and times the work alone again.
    make_server:
        ``make_server() -> Server`` (not started), default a busy ``PollingServer``.

    Returns
    -------
    NeighbourSlowdown
        About ``trials * (3 runs of the work + window + 20 ms)`` seconds.
    """
    name = work if isinstance(work, str) else getattr(work, "__name__", "work")
    run = WORKLOADS[work] if isinstance(work, str) else work
    make_server = make_server or _default_busy_server
    run()  # warm up: the first run pays for imports and caches
    with gc_paused():
        return _trials(name, run, trials, window, make_server)


def _trials(name, run, trials, window, make_server) -> NeighbourSlowdown:
    alone, beside, ratios, rounds_alone, rounds_beside = [], [], [], [], []
    for _ in range(trials):
        before = _timed(run)
        with make_server() as server:
            _, idle_rate = _rate(server, lambda: time.sleep(window))
            during, busy_rate = _rate(server, run)
        after = _timed(run)
        alone += [before, after]
        beside.append(during)
        ratios.append(during / statistics.fmean((before, after)))
        rounds_alone.append(idle_rate)
        rounds_beside.append(busy_rate)
    return NeighbourSlowdown(
        name,
        Spread.of(alone),
        Spread.of(beside),
        Spread.of(ratios),
        Spread.of(rounds_alone),
        Spread.of(rounds_beside),
    )


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start
