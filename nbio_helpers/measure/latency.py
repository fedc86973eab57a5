"""How long replies take and how many a server echoes per second, from the client process.

::

    with SelectServer() as server:
        lat = latency_stats(server, requests=50, trials=3)   # sequential requests
        lat.median, lat.tail_name, lat.tail                  # seconds; 'p90' from 100 samples
        lat.spread                                           # each trial's median, and range
        load = throughput(server, clients=20, seconds=0.2, trials=3)   # an EchoLoad's fields
        load.messages_per_second, load.cpu, load.ok          # msg/s, server CPU, every echo ok

Both run their clients in the client process (:mod:`.process`), never in this one: a
client thread here would share the GIL with the server's thread. Python's automatic garbage
collector is paused meanwhile (:mod:`.quiet`).
"""

from __future__ import annotations

import dataclasses
import math
import statistics

from nbio_helpers.measure.echo import EchoLoad, measure_load
from nbio_helpers.measure.process import ClientProcess, client_process
from nbio_helpers.measure.quiet import gc_paused
from nbio_helpers.measure.stats import Spread, tail

__all__ = ["LatencyStats", "Throughput", "latency_stats", "throughput"]


def _address(target) -> tuple[str, int]:
    """``(host, port)`` of a Server or of an address."""
    address = getattr(target, "address", target)
    return address[0], address[1]


# ------------------------------------------------------------------------- latency
@dataclasses.dataclass(frozen=True)
class LatencyStats:
    """Request latencies measured by :func:`latency_stats`, in seconds.

    ``samples`` holds every completed round trip, trial after trial, in the order made. The
    slow end is reported under its true name (:func:`nbio_helpers.measure.stats.tail`): ``tail`` is
    the p99 with 1,000 samples or more, the p90 with 100 or more, else the maximum
    (``tail_name`` says which).
    """

    median: float
    """Median of every sample (pooled over the trials)."""
    tail: float
    tail_name: str
    mean: float
    samples: list
    requested: int = 0
    """Requests asked for per trial."""
    spread: Spread | None = None
    """Each trial's median, and their range (the pooled median lies within it)."""

    @classmethod
    def from_samples(cls, samples, requested: int | None = None) -> LatencyStats:
        """Summarise round-trip times: a flat list (one trial) or a list of trials."""
        trials = (
            [list(t) for t in samples]
            if samples and isinstance(next(iter(samples)), (list, tuple))
            else [list(samples)]
        )
        pooled = [s for t in trials for s in t]
        if not pooled:
            nan = math.nan
            return cls(nan, nan, tail([]).name, nan, [], requested or 0, Spread.of([]))
        median = statistics.median(pooled)
        slow = tail(pooled)
        spread = Spread.of([statistics.median(t) if t else math.nan for t in trials], pooled=median)
        return cls(
            median,
            slow.value,
            slow.name,
            statistics.fmean(pooled),
            pooled,
            len(pooled) if requested is None else requested,
            spread,
        )

    @property
    def count(self) -> int:
        """How many requests completed (every trial)."""
        return len(self.samples)

    def ms(self) -> dict:
        """Median, tail and mean in milliseconds, rounded for display."""
        return {
            "median_ms": round(self.median * 1e3, 3),
            f"{self.tail_name}_ms": round(self.tail * 1e3, 3),
            "mean_ms": round(self.mean * 1e3, 3),
            "count": self.count,
        }


def latency_stats(
    target,
    requests: int = 100,
    size: int = 32,
    timeout: float = 5.0,
    spacing: tuple[float, float] = (0.0, 0.0005),
    seed: int = 0,
    *,
    trials: int = 1,
    pace: str = "spin",
    process=None,
) -> LatencyStats:
    """Time ``trials`` x ``requests`` echo round trips, one after another, from the client
    process.

    Before each request the client pauses a random time from ``spacing`` (seconds):
    stratified, so that arrivals fall uniformly over a sleeping poller's cycle (see
    :func:`nbio_helpers.bench.load.sequential_echo`). For a server that sleeps ``P``
    between rounds choose ``spacing`` spanning at least ``(0, P)``; the median wait is then
    ``P / 2``. Each trial uses a connection of its own.

    Parameters
    ----------
    target:
        A running server, or the ``(host, port)`` of one.
    requests:
        Round trips timed per trial (one more, untimed, goes first).
    size:
        Bytes per request (lower-case letters; the echo must come back upper-cased).
    timeout:
        Bound on the whole measurement, in seconds: no new request starts after it, and a
        reply still missing then is abandoned.
    spacing:
        ``(low, high)`` bounds of the random pause before each request, in seconds.
    seed:
        Seed of the pauses and payloads, so two runs make the same requests.
    trials:
        Repeated series; ``spread`` gives each one's median.
    pace:
        How the client pauses: ``"spin"`` (on the clock, the default) or ``"sleep"``
        (``time.sleep``). Sleeping pauses end on the kernel's timer, which also fires a
        sleeping poller's timer when both fall due within its slack (50 µs on Linux): the
        requests then arrive as the server wakes, and a 0.1 ms sleeper looks faster than a
        busy poller. ``"sleep"`` is there to show that artifact, not to measure with.
    process:
        The :class:`~.process.ClientProcess` to measure from (default: the shared one).

    Returns
    -------
    LatencyStats
        Over the requests that completed in time.

    Raises
    ------
    TimeoutError
        If not even one request completed within ``timeout``.
    ValueError
        If an echo came back wrong.
    """
    host, port = _address(target)
    process = process or client_process()
    with gc_paused():
        reply = process.request(
            "latency",
            timeout=timeout + 10,
            host=host,
            port=port,
            requests=requests,
            size=size,
            spacing=list(spacing),
            trials=trials,
            seed=seed,
            within=timeout,
            pace=pace,
        )
    return LatencyStats.from_samples(reply["trials"], requests)


# ---------------------------------------------------------------------- throughput
@dataclasses.dataclass(frozen=True)
class Throughput:
    """What :func:`throughput` measured: echoes per second under a concurrent load."""

    clients: int
    size: int
    messages_per_second: float
    """Pooled: every echo measured over every trial's measured seconds."""
    spread: Spread
    """Each trial's messages per second, and their range."""
    median_latency: float
    """Of every echo measured (seconds)."""
    tail_latency: float
    tail_name: str
    cpu: float
    """The server's CPU share meanwhile (cores; ``nan`` if only an address was given)."""
    cpu_spread: Spread
    clients_served: int
    """The fewest clients that got at least one echo in a trial (blocking: 1)."""
    messages: int
    errors: list

    @property
    def ok(self) -> bool:
        """Every echo of every trial came back intact, and echoes did come back."""
        return not self.errors and self.messages > 0


def throughput(
    target,
    load: EchoLoad | None = None,
    *,
    trials: int = 1,
    process: ClientProcess | None = None,
    **changes,
) -> Throughput:
    """Run ``load`` (an :class:`~.echo.EchoLoad`: concurrent clients echoing as fast as
    their echoes come back; default ``EchoLoad()``) ``trials`` times from the client
    process; every echo is checked.

    ``changes`` are fields of the load to change, so that ``throughput(server, clients=20,
    seconds=0.2)`` means ``throughput(server, EchoLoad(clients=20, seconds=0.2))``. Pass
    the server itself (not its address) to also get its CPU share meanwhile. Returns a
    :class:`Throughput`.
    """
    load = dataclasses.replace(load or EchoLoad(), **changes)
    runs, shares = [], []
    for _ in range(trials):
        run = measure_load(target, load, process=process, keep_latencies=True)
        runs.append(run.reply)
        shares.append(run.cpu_share)
    latencies = [s for run in runs for s in run["latencies_s"]]
    measured = sum(run["seconds"] for run in runs)
    done = sum(run["messages"] for run in runs)
    rate = done / measured if measured > 0 else 0.0
    slow = tail(latencies)
    share = statistics.fmean(shares)
    return Throughput(
        clients=load.clients,
        size=load.size,
        messages_per_second=rate,
        spread=Spread.of([run["messages_per_second"] for run in runs], pooled=rate),
        median_latency=statistics.median(latencies) if latencies else math.nan,
        tail_latency=slow.value,
        tail_name=slow.name,
        cpu=share,
        cpu_spread=Spread.of(shares, pooled=share),
        clients_served=min(run["clients_served"] for run in runs),
        messages=done,
        errors=[e for run in runs for e in run["errors"]][:10],
    )
