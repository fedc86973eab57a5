"""One concurrent echo load, measured from the client process: what it is and how it is run.

::

    load = EchoLoad(clients=20, seconds=0.2)          # validated here, once
    run = measure_load(server, load, keep_latencies=True)
    run.reply["messages_per_second"], run.cpu_share   # msg/s, the server's CPU meanwhile

:class:`EchoLoad` is the one description of that load (its parameters, their defaults,
their checks and their meaning), shared by :func:`~.latency.throughput`,
:func:`~.comparison.compare`, the bench and notebook 06's
:func:`~nbio_helpers.loop.measure.compare_loops`. :func:`measure_load` is the one way to run
it: in the client process (:mod:`.process`; a client thread here would share the GIL with
the server), with Python's automatic garbage collector paused here meanwhile
(:mod:`.quiet`), and the server's CPU time read around it. The clients themselves are
:func:`nbio_helpers.bench.load.echo_load`, which runs in the client process.
"""

from __future__ import annotations

import dataclasses
import math
import time

from nbio_helpers.measure.process import ClientProcess, client_process
from nbio_helpers.measure.quiet import gc_paused

__all__ = ["EchoLoad", "LoadRun", "measure_load"]


@dataclasses.dataclass(frozen=True)
class EchoLoad:
    """``clients`` concurrent clients, each echoing ``size``-byte messages and sending its
    next message as soon as its echo is back (every echo checked byte for byte), for
    ``warmup + seconds``; only the last ``seconds`` count.

    Parameters
    ----------
    clients:
        Concurrent clients (at least 1). The server needs a listen backlog for all of them
        at once (a one-at-a-time server serves one, the others wait in the backlog).
    size:
        Bytes per message (at least 1).
    warmup:
        Seconds of load before the measured window (at least 0).
    seconds:
        The measured window, in seconds (more than 0).
    connect_timeout:
        Bound on each client's connect, in seconds (more than 0).

    Raises
    ------
    ValueError
        For a value out of range, saying which.

    Change one field with ``dataclasses.replace(load, seconds=1.0)`` (validated again).
    """

    clients: int = 20
    size: int = 64
    warmup: float = 0.05
    seconds: float = 0.2
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name in ("clients", "size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"EchoLoad {name} must be a whole number >= 1, not {value!r}")
        if not self.warmup >= 0:  # written so that nan is refused too
            raise ValueError(f"EchoLoad warmup must be >= 0 seconds, not {self.warmup!r}")
        for name in ("seconds", "connect_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"EchoLoad {name} must be > 0 seconds, not {getattr(self, name)!r}"
                )

    @property
    def duration(self) -> float:
        """``warmup + seconds``: how long the clients run."""
        return self.warmup + self.seconds


@dataclasses.dataclass(frozen=True)
class LoadRun:
    """What :func:`measure_load` measured: the client process's reply, and this side."""

    reply: dict
    """:func:`nbio_helpers.bench.load.echo_load`'s result: ``messages_per_second``,
    ``messages``, ``seconds``, ``errors``, ``latencies_s`` (with ``keep_latencies``)..."""
    cpu_seconds: float
    """CPU time the server's threads used meanwhile (``nan`` without a server)."""
    wall_seconds: float
    """How long the whole request took, here."""

    @property
    def cpu_share(self) -> float:
        """The server's CPU share meanwhile, in cores (``nan`` without a server)."""
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else math.nan


def measure_load(
    target,
    load: EchoLoad,
    *,
    process: ClientProcess | None = None,
    keep_latencies: bool = False,
    slack: float = 30.0,
) -> LoadRun:
    """Run ``load`` against ``target`` from the client process; returns a :class:`LoadRun`.

    Parameters
    ----------
    target:
        A running server (its CPU time is read too), or the ``(host, port)`` of one.
    load:
        The :class:`EchoLoad` to run.
    process:
        The :class:`~.process.ClientProcess` to run it in (default: the shared one).
    keep_latencies:
        The reply holds every echo's latency too (``latencies_s``).
    slack:
        Seconds allowed beyond ``load.duration + load.connect_timeout`` for the reply.
    """
    address = getattr(target, "address", target)
    cpu = getattr(target, "cpu", None)
    process = process or client_process()
    with gc_paused():
        cpu0, t0 = (cpu.total() if cpu else math.nan), time.perf_counter()
        reply = process.echo_load(
            (address[0], address[1]), load, keep_latencies=keep_latencies, slack=slack
        )
        wall = time.perf_counter() - t0
        used = cpu.total() - cpu0 if cpu else math.nan
    return LoadRun(reply, used, wall)
