"""Measurements: what a server costs in CPU, how long its replies take, and the trade-off.

The article this series grew from claims that polling "pushes CPU use up" and "adds latency".
These functions measure both on the reader's machine::

    from nbio_helpers import PollingServer
    from nbio_helpers.measure import idle_cost, idle_cpu_share, latency_stats, poll_interval_sweep

    with PollingServer(interval=0) as server:
        idle_cpu_share(server, clients=10, seconds=0.5)   # ~1.0: one core, doing nothing useful
        idle_cost(server).would_block_per_second          # ~400,000: "not yet", again and again
        latency_stats(server.address).median              # seconds, ~0.0001

    results = poll_interval_sweep([0, 0.001, 0.01])       # CPU share and latency per interval
    plot_tradeoff(results)                                 # the trade-off, with the theory

Every function here is bounded in time (``seconds``, ``timeout``) and stops what it starts.
CPU shares are fractions of one core (1.0 = one core fully busy), measured on the server's own
threads only (see :mod:`nbio_helpers.cpu`), so the client's work in the calling thread is not
counted. Latencies are in seconds.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import socket
import statistics
import time

from .clients import LoadResult, connect, recv_exactly, run_load
from .cpu import cpu_share
from .events import ACCEPT, ACCEPT_WOULD_BLOCK, WOULD_BLOCK
from .limits import ensure_fd_room
from .server import wait_until

__all__ = ["IdleCost", "LatencyStats", "idle_clients", "idle_cost", "idle_cpu_share",
           "latency_stats", "poll_interval_sweep", "plot_tradeoff", "throughput"]


# ----------------------------------------------------------------------------- CPU
@contextlib.contextmanager
def idle_clients(server, clients: int = 10, timeout: float = 2.0):
    """Connect ``clients`` silent clients to a running ``server``; close them on exit.

    Waits (at most ``timeout`` seconds) until the server has accepted them, so that a
    measurement taken inside the ``with`` block sees every connection. Yields the sockets.
    """
    accepted_before = server.events.count(ACCEPT)
    ensure_fd_room(2 * clients)   # both ends are in this process (macOS allows 256)
    socks: list[socket.socket] = []
    try:
        for _ in range(clients):
            socks.append(connect(server.address, timeout))
        wait_until(lambda: server.events.count(ACCEPT) - accepted_before >= clients, timeout)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _cpu_window(server, seconds: float) -> tuple[float, float]:
    """(CPU share, polling rounds per second) of ``server`` over ``seconds``.

    Rounds are counted where the model records one ``ACCEPT_WOULD_BLOCK`` per round (the
    polling models do); otherwise the second value is ``nan``.
    """
    rounds_before = server.events.count(ACCEPT_WOULD_BLOCK)
    start = time.perf_counter()
    share = cpu_share(server.cpu, seconds)
    elapsed = time.perf_counter() - start
    rounds = server.events.count(ACCEPT_WOULD_BLOCK) - rounds_before
    return share, (rounds / elapsed if rounds > 0 else math.nan)


def idle_cpu_share(server, clients: int = 10, seconds: float = 0.5) -> float:
    """Fraction of one core the server's own threads use while ``clients`` connected clients
    send nothing at all.

    Parameters
    ----------
    server:
        A running :class:`~nbio_helpers.server.Server` (any model).
    clients:
        How many silent clients to connect first (closed again afterwards).
    seconds:
        Length of the measuring window.

    Returns
    -------
    float
        1.0 means one core fully busy; ``nan`` where per-thread CPU time is not available.

    >>> with PollingServer(interval=0) as server:        # doctest: +SKIP
    ...     idle_cpu_share(server)
    0.99
    """
    with idle_clients(server, clients):
        share, _ = _cpu_window(server, seconds)
    return share


@dataclasses.dataclass(frozen=True)
class IdleCost:
    """What a server costs while its clients say nothing, as measured by :func:`idle_cost`.

    ``cpu`` and ``rest`` are shares of one core; the rates are per second of the window.
    """

    cpu: float
    """The server's own thread(s): 1.0 = a whole core."""
    rest: float
    """Every other thread of this process together (the caller's thread only sleeps in the
    window, so this stays near 0: the server's thread had Python's GIL to itself)."""
    would_block_per_second: float
    """``recv()`` calls that raised ``BlockingIOError``: the firm sign of polling. A busy
    machine lowers it, but not by orders of magnitude; a loop that waits in the kernel
    (``select``) makes none."""
    rounds_per_second: float
    """Polling rounds (``nan`` for models that record none)."""
    seconds: float
    """Length of the window that was kept."""
    windows: int = 1
    """How many windows were measured (see ``attempts`` of :func:`idle_cost`)."""


def _idle_window(server, seconds: float) -> IdleCost:
    count = server.events.count
    rounds0, blocked0 = count(ACCEPT_WOULD_BLOCK), count(WOULD_BLOCK)
    cpu0, process0, t0 = server.cpu.total(), time.process_time(), time.perf_counter()
    time.sleep(seconds)  # this thread only sleeps: it takes no CPU and no GIL from the server
    cpu1, process1, t1 = server.cpu.total(), time.process_time(), time.perf_counter()
    elapsed = t1 - t0
    used = cpu1 - cpu0
    rounds = count(ACCEPT_WOULD_BLOCK) - rounds0
    return IdleCost(cpu=used / elapsed,
                    rest=max(0.0, (process1 - process0 - used) / elapsed),
                    would_block_per_second=(count(WOULD_BLOCK) - blocked0) / elapsed,
                    rounds_per_second=rounds / elapsed if rounds > 0 else math.nan,
                    seconds=elapsed)


def idle_cost(server, clients: int = 10, seconds: float = 1.0, *, attempts: int = 1,
              retry_below: float = 0.0) -> IdleCost:
    """CPU share, polling rate and ``BlockingIOError`` rate of ``server`` while ``clients``
    connected clients send nothing.

    The calling thread connects the clients, then only sleeps through the window, so the
    server's thread is the one busy Python thread (``rest`` shows what the others used).
    CPU time can only be measured as a share of what the machine gave: other programs
    competing for the cores lower ``cpu``. With ``attempts > 1``, a window whose ``cpu`` is
    below ``retry_below`` is measured again, up to ``attempts`` windows in all, and the
    window with the highest ``cpu`` is returned (``windows`` says how many were measured).

    >>> with PollingServer(interval=0) as server:                        # doctest: +SKIP
    ...     idle_cost(server, seconds=1.0, attempts=3, retry_below=0.8).cpu
    0.99
    """
    if attempts < 1 or seconds <= 0:
        raise ValueError("attempts must be >= 1 and seconds > 0")
    best = None
    with idle_clients(server, clients):
        for window in range(1, attempts + 1):
            cost = _idle_window(server, seconds)
            if best is None or cost.cpu > best.cpu:
                best = cost
            if not cost.cpu < retry_below:  # enough (or nan: unsupported, no point retrying)
                break
    return dataclasses.replace(best, windows=window)


# ------------------------------------------------------------------------- latency
@dataclasses.dataclass(frozen=True)
class LatencyStats:
    """Request latencies measured by :func:`latency_stats`, in seconds.

    ``samples`` holds one round-trip time per completed request, in the order they were made;
    ``requested`` is how many were asked for (fewer complete if the time bound is reached).
    """

    median: float
    p99: float
    mean: float
    samples: list[float]
    requested: int = 0

    @classmethod
    def from_samples(cls, samples, requested: int | None = None) -> "LatencyStats":
        """Summarise a list of round-trip times (seconds)."""
        samples = list(samples)
        if not samples:
            nan = math.nan
            return cls(nan, nan, nan, [], requested or 0)
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        return cls(statistics.median(samples), p99, statistics.fmean(samples), samples,
                   len(samples) if requested is None else requested)

    @property
    def count(self) -> int:
        """How many requests completed."""
        return len(self.samples)

    def ms(self) -> dict:
        """Median, p99 and mean in milliseconds, rounded for display."""
        return {"median_ms": round(self.median * 1e3, 3), "p99_ms": round(self.p99 * 1e3, 3),
                "mean_ms": round(self.mean * 1e3, 3), "count": self.count}


def latency_stats(address, requests: int = 100, size: int = 32, timeout: float = 5.0,
                  spacing: tuple[float, float] = (0.0, 0.002), seed: int = 0) -> LatencyStats:
    """Time ``requests`` echo round trips over one persistent connection.

    Before each request the client pauses a random time, uniform in ``spacing`` (seconds).
    Why: a polling server that sleeps between rounds answers just after it wakes; a client
    that sent its next request at once would always arrive at the same point of the server's
    sleep. Random pauses spread arrivals uniformly over the polling period, so the median wait
    is half the period. For a period ``P``, choose ``spacing`` spanning at least ``(0, P)``.
    The pauses are stratified (one in each of ``requests`` equal slices of ``spacing``, in
    random order): uniform still, but a few requests already give a steady median.

    Parameters
    ----------
    address:
        ``(host, port)`` of a running echo server.
    requests:
        How many round trips to time (one more, untimed, goes first).
    size:
        Bytes per request (lower-case letters; the echo must come back upper-cased).
    timeout:
        Bound on the whole measurement, in seconds: no new request starts after it, and a
        reply still missing then is abandoned.
    spacing:
        ``(low, high)`` bounds of the random pause before each request, in seconds.
    seed:
        Seed of the pauses and payloads, so two runs make the same requests.

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
    if requests < 1 or size < 1:
        raise ValueError("requests and size must be >= 1")
    low, high = spacing
    rng = random.Random(seed)
    payload = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(size))
    expected = payload.upper()
    pauses = [low + (high - low) * (k + rng.random()) / requests for k in range(requests)]
    rng.shuffle(pauses)
    deadline = time.monotonic() + timeout
    samples: list[float] = []
    with connect(address, timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # One request not timed: it meets the server at a random point of its cycle, while
        # each timed one starts a known pause after the previous reply.
        for pause in [0.0, *pauses]:
            if time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
            start = time.perf_counter()
            sock.sendall(payload)
            try:
                reply = recv_exactly(sock, size, timeout=max(0.001, deadline - time.monotonic()))
            except TimeoutError:
                break
            if reply != expected:
                raise ValueError(f"echo mismatch: sent {payload!r}, got {reply!r}")
            samples.append(time.perf_counter() - start)
    samples = samples[1:]
    if not samples:
        raise TimeoutError(f"no reply from {address[0]} within {timeout} s")
    return LatencyStats.from_samples(samples, requests)


# ---------------------------------------------------------------------- throughput
def throughput(address, clients: int = 20, messages: int = 50, size: int = 64,
               timeout: float = 10.0) -> LoadResult:
    """Run a load of ``clients`` concurrent clients x ``messages`` echoes of ``size`` bytes.

    A thin wrapper of :func:`~nbio_helpers.clients.run_load` with settings suited to comparing
    models in a notebook. Read ``.messages_per_second``, ``.median_latency`` and ``.ok`` (every
    echo came back intact) on the returned :class:`~nbio_helpers.clients.LoadResult`.
    """
    return run_load(address, clients=clients, messages=messages, size=size, timeout=timeout)


# --------------------------------------------------------------------------- sweep
def _default_polling_server(interval: float):
    from .models.polling import PollingServer  # local: models import clients, not measure
    return PollingServer(interval=interval, record_events=False)


def _auto_requests(interval: float, budget: float) -> int:
    # Each request costs about one period (random pause + wait): fit them in the budget.
    return int(min(100, max(10, budget / max(interval, 0.001))))


def poll_interval_sweep(intervals, seconds: float = 0.4, requests: int | None = None, *,
                        clients: int = 10, latency_budget: float = 0.5, timeout: float = 5.0,
                        make_server=None) -> list[dict]:
    """For each poll interval, start a polling server and measure what it costs.

    Parameters
    ----------
    intervals:
        Seconds slept between polling rounds, e.g. ``[0, 0.0001, 0.001, 0.01, 0.05]``
        (0 = busy polling).
    seconds:
        CPU measuring window per interval, with ``clients`` silent clients connected.
    requests:
        Latency requests per interval; default: as many as fit in ``latency_budget``
        seconds (between 10 and 100).
    clients:
        Silent clients kept connected during both measurements (each round polls them).
    timeout:
        Bound on each latency measurement.
    make_server:
        ``make_server(interval) -> Server`` (not started); default: a
        :class:`~nbio_helpers.models.PollingServer` without event recording.

    Returns
    -------
    list of dict
        One per interval, in the given order, with keys ``interval``, ``cpu`` (share of one
        core), ``median``, ``p99``, ``mean`` (seconds), ``theory`` (``interval / 2``, the
        expected median wait), ``samples`` (completed requests), ``rounds_per_second`` and
        ``cpu_per_round`` (seconds of CPU per polling round; ``nan`` if not counted).
    """
    make_server = make_server or _default_polling_server
    results = []
    for interval in intervals:
        n = requests or _auto_requests(interval, latency_budget)
        with make_server(interval) as server, idle_clients(server, clients):
            cpu, rounds_per_second = _cpu_window(server, seconds)
            stats = latency_stats(server.address, requests=n, timeout=timeout,
                                  spacing=(0.0, max(0.002, interval)))
        results.append({
            "interval": interval, "cpu": cpu, "median": stats.median, "p99": stats.p99,
            "mean": stats.mean, "theory": interval / 2, "samples": stats.count,
            "rounds_per_second": rounds_per_second,
            "cpu_per_round": cpu / rounds_per_second if rounds_per_second > 0 else math.nan,
        })
    return results


# ---------------------------------------------------------------------------- plot
def _interval_label(interval: float) -> str:
    if interval == 0:
        return "0 (busy)"
    ms = interval * 1e3
    return f"{ms:g} ms" if ms >= 0.1 else f"{ms * 1e3:g} µs"


def plot_tradeoff(results, ax=None, *, title: str | None = None):
    """Draw the CPU-vs-latency trade-off of a poll-interval sweep; return the Figure.

    ``results`` is the list returned by :func:`poll_interval_sweep` (or any dicts with
    ``interval``, ``cpu``, ``median`` and optionally ``p99``). On log-log axes: x = reply
    latency (ms), y = CPU share of one core. Each measured median is a filled dot labelled with
    its interval, its p99 a bar to the right; the open dots joined by a dashed line are the
    theory, the same CPU share at latency = interval / 2 (busy polling has no theoretical wait
    and gets no open dot). Points close to their open dot agree with the theory.
    """
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
    else:
        fig = ax.figure
    points = sorted((r for r in results if _finite(r.get("cpu")) and _finite(r.get("median"))),
                    key=lambda r: r["interval"])
    floor = 1e-3  # CPU shares below 0.1 % of a core are drawn at the floor (log axis)
    theory = [(r["theory"] * 1e3 if "theory" in r else r["interval"] * 500, max(r["cpu"], floor))
              for r in points if r["interval"] > 0]
    if theory:
        ax.plot(*zip(*theory), "o--", color="tab:gray", mfc="white", ms=7, zorder=2,
                label="theory: latency = interval / 2")
    for r in points:
        x, y = r["median"] * 1e3, max(r["cpu"], floor)
        if _finite(r.get("p99")):
            ax.plot([x, r["p99"] * 1e3], [y, y], "-", color="tab:blue", alpha=0.35, lw=3, zorder=1)
        # Left of the dot, except busy polling's: it is the leftmost, by the y axis.
        busy = r["interval"] == 0
        ax.annotate(_interval_label(r["interval"]), (x, y), textcoords="offset points",
                    xytext=(6, 7) if busy else (-6, 7), ha="left" if busy else "right",
                    fontsize=9)
    if points:
        ax.plot([r["median"] * 1e3 for r in points], [max(r["cpu"], floor) for r in points],
                "o", color="tab:blue", ms=7, zorder=3, label="measured median (bar: to p99)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.yaxis.set_major_formatter(plain)
    ax.set_xlabel("reply latency (ms, log scale)")
    ax.set_ylabel("server CPU (share of one core, log scale)")
    ax.axhline(1.0, color="tab:red", lw=0.8, ls=":", zorder=0, label="one whole core")
    ax.set_ylim(floor / 1.5, 2.0)
    ax.set_title(title or "Polling: CPU or latency, pick one")
    ax.grid(True, which="major", alpha=0.3)
    if points:
        ax.legend(loc="lower left", fontsize=9)
    return fig


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
