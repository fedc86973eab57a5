"""What a server costs while its clients say nothing: the one idle measurement.

::

    with PollingServer(interval=0) as server:
        cost = idle_cost(server, clients=10, seconds=0.5, repeat=3)
        cost.cpu                      # ~1.0: a whole core, doing nothing useful
        cost.rounds_per_second        # ~40,000 loop rounds: "anything?", again and again
        cost.would_block_per_second   # ~400,000 BlockingIOErrors
        cost.spread                   # the CPU share of each of the 3 windows

The silent clients are connected from the client process (:mod:`.process`), and the caller's
thread only sleeps through each window, so the server's thread is the one busy Python
thread of this process (``rest`` shows what the others used).

CPU can only be measured as a share of what the machine gave: other programs competing for
the cores lower a busy loop's share (never a sleeping loop's). So a *lower* bound on a busy
loop's CPU is checked with retries (``attempts``, ``retry_below``), keeping the least
disturbed attempt; an *upper* bound (``select`` idles near 0) needs none.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time

from nbio_helpers.events import ACCEPT, ACCEPT_WOULD_BLOCK, WAKEUP, WOULD_BLOCK
from nbio_helpers.limits import ensure_fd_room
from nbio_helpers.measure.process import client_process
from nbio_helpers.measure.quiet import gc_paused
from nbio_helpers.measure.stats import Spread

__all__ = [
    "HeldClients",
    "IdleCost",
    "idle_clients",
    "idle_cost",
    "idle_cost_held",
    "loop_rounds",
    "next_round",
]


def loop_rounds(server) -> int:
    """How many times ``server``'s loop has gone round so far, read from its event log.

    Waiting loops (select, sleeping polls) record a ``WAKEUP`` each time they return; the
    polling loop records an ``ACCEPT_WOULD_BLOCK`` every round, busy or not. The larger of
    the two counts is the number of rounds. Counted even with ``record_events=False``.
    Models that record neither (threads, asyncio) always give 0.
    """
    return max(server.events.count(WAKEUP), server.events.count(ACCEPT_WOULD_BLOCK))


@dataclasses.dataclass(frozen=True)
class HeldClients:
    """Silent connections held open by the client process (see :func:`idle_clients`)."""

    opened: int
    """Connections the client process opened."""
    accepted: int
    """How many of them the server recorded as accepted (a one-at-a-time server: 1)."""
    errors: tuple = ()
    """Why connecting stopped early, if it did."""

    def __len__(self) -> int:
        """How many connections are held (``opened``)."""
        return self.opened


@contextlib.contextmanager
def idle_clients(
    server, clients: int = 10, timeout: float = 5.0, *, process=None, stall: float = 0.1
):
    """Hold ``clients`` silent connections to ``server`` from the client process.

    Waits until the server has accepted them all, or has accepted none more for ``stall``
    seconds (a one-client-at-a-time server accepts only one), at most ``timeout`` seconds.
    Yields a :class:`HeldClients`; the connections are closed on exit.
    """
    process = process or client_process()
    address = server.address[0], server.address[1]
    ensure_fd_room(clients)  # the server's ends are in this process (macOS allows 256)
    with process.lock:  # no other thread's request in between: the accepts are these clients'
        accepted_before = server.events.count(ACCEPT)
        with process.held(
            address, clients, timeout=timeout + 30, check=False, within=timeout
        ) as held:
            opened = held.get("opened", 0)
            accepted = _wait_for_accepts(server, accepted_before, opened, timeout, stall)
            # Never more than were opened: an accept of someone else's connection in the
            # meantime (another client of the same server) is not a silent client.
            yield HeldClients(opened, min(accepted, opened), tuple(held.get("errors", ())))


def _wait_for_accepts(server, before: int, wanted: int, timeout: float, stall: float) -> int:
    deadline = time.monotonic() + timeout
    last, last_change = -1, time.monotonic()
    while True:
        accepted = server.events.count(ACCEPT) - before
        now = time.monotonic()
        if accepted != last:
            last, last_change = accepted, now
        if accepted >= wanted or now >= deadline or now - last_change >= stall:
            return accepted
        time.sleep(0.002)


@dataclasses.dataclass(frozen=True)
class IdleCost:
    """What a server costs while its clients say nothing, as measured by :func:`idle_cost`.

    ``cpu`` and ``rest`` are shares of one core (1.0 = a whole core); rates are per second.
    Over several windows, each figure is the pooled one (totals over total time), and
    ``spread`` gives the CPU share of each window.
    """

    cpu: float
    """The server's own thread(s)."""
    rest: float
    """Every other thread of this process together (the caller's thread only sleeps in the
    windows, so this stays near 0: the server's thread had Python's GIL to itself)."""
    would_block_per_second: float
    """``recv()`` calls that raised ``BlockingIOError``: the firm sign of polling. A busy
    machine lowers it, but not by orders of magnitude; a loop that waits in the kernel
    (``select``) makes none."""
    rounds_per_second: float
    """Loop rounds, or wake-ups of a waiting loop (:func:`loop_rounds`); ``nan`` for models
    that record none (threads, asyncio)."""
    seconds: float
    """Total length of the windows kept."""
    windows: int = 1
    """How many windows were measured in all (retries included)."""
    clients: int = 0
    """Silent clients the server had accepted."""
    opened: int = 0
    """Silent clients the client process had connected."""
    errors: tuple = ()
    """Why connecting the silent clients stopped early, if it did."""
    spread: Spread | None = None
    """The CPU share of each window kept, and their range."""
    round_spread: Spread | None = None
    """The rounds per second of each window kept, and their range."""

    @property
    def cpu_per_round(self) -> float:
        """CPU seconds one loop round costs (``nan`` without rounds)."""
        rate = self.rounds_per_second
        return self.cpu / rate if rate > 0 else math.nan

    @property
    def wakeups_per_second(self) -> float:
        """Deprecated name of :attr:`rounds_per_second` (0 where ``nan``)."""
        rate = self.rounds_per_second
        return 0.0 if math.isnan(rate) else rate


class _Counters:
    """A snapshot of what a window measures, taken from any thread."""

    def __init__(self, server):
        self.rounds = loop_rounds(server)
        self.blocked = server.events.count(WOULD_BLOCK)
        self.cpu = server.cpu.total()
        self.process = time.process_time()
        self.t = time.perf_counter()


def _round_period(server) -> float | None:
    """Roughly how long one loop round takes, if rounds are slow enough to need aligning.

    Windows over a loop that goes round a few hundred times a second or less start and end
    at a round boundary: otherwise a window of ``k`` rounds would count ``k - 1`` or
    ``k + 1`` of them (the sleeping pollers). Returns None for fast or uncounted loops.
    """
    rounds = loop_rounds(server)
    age = time.monotonic() - server.events.started
    if rounds < 2 or age <= 0:
        return None
    period = age / rounds
    return period if period >= 0.0005 else None


def next_round(server, period: float) -> bool:
    """Return just after the loop starts a new round: True; False if none came within
    three periods (at most 0.25 s): the loop is not going round by itself."""
    start = loop_rounds(server)
    deadline = time.monotonic() + min(3 * period, 0.25)
    step = max(0.0002, period / 20)
    while loop_rounds(server) == start:
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True


def _measure_windows(server, seconds: float, repeat: int) -> list[tuple[_Counters, _Counters]]:
    period = _round_period(server)
    windows = []
    for _ in range(repeat):
        if period and not next_round(server, period):
            period = None  # e.g. a select loop woken by the accepts, idle since
        before = _Counters(server)
        # This thread only sleeps: it takes no CPU and no GIL from the server.
        time.sleep(max(0.0, seconds - period / 2) if period else seconds)
        if period and not next_round(server, period):
            period = None
        windows.append((before, _Counters(server)))
    return windows


def _pooled(windows, rounds_counted: bool, clients: int, measured: int) -> IdleCost:
    elapsed = sum(b.t - a.t for a, b in windows)
    used = sum(b.cpu - a.cpu for a, b in windows)
    process = sum(b.process - a.process for a, b in windows)
    rounds = sum(b.rounds - a.rounds for a, b in windows)
    blocked = sum(b.blocked - a.blocked for a, b in windows)
    cpu = used / elapsed
    shares = [(b.cpu - a.cpu) / (b.t - a.t) for a, b in windows]
    rate = rounds / elapsed if rounds_counted else math.nan
    rates = [
        (b.rounds - a.rounds) / (b.t - a.t) if rounds_counted else math.nan for a, b in windows
    ]
    return IdleCost(
        cpu=cpu,
        rest=max(0.0, (process - used) / elapsed),
        would_block_per_second=blocked / elapsed,
        rounds_per_second=rate,
        seconds=elapsed,
        windows=measured,
        clients=clients,
        spread=Spread.of(shares, pooled=cpu),
        round_spread=Spread.of(rates, rate),
    )


def _check_windows(seconds: float, repeat: int, attempts: int) -> None:
    if attempts < 1 or repeat < 1 or not seconds > 0:
        raise ValueError(
            f"attempts and repeat must be >= 1 and seconds > 0, not attempts={attempts!r}, "
            f"repeat={repeat!r}, seconds={seconds!r}"
        )


def idle_cost(
    server,
    clients: int = 10,
    seconds: float = 1.0,
    *,
    repeat: int = 1,
    attempts: int = 1,
    retry_below: float = 0.0,
    process=None,
    settle: float = 0.1,
) -> IdleCost:
    """CPU share, loop rounds and ``BlockingIOError`` rate of ``server`` while ``clients``
    connected clients (from the client process) send nothing.

    Parameters
    ----------
    server:
        A running :class:`~nbio_helpers.server.Server` (any model).
    clients:
        Silent clients to connect first (closed again afterwards).
    seconds:
        Length of one measuring window. A loop that sleeps between rounds is measured over
        whole rounds (a window starts and ends just after a round begins).
    repeat:
        Windows per attempt; the figures are pooled over them and ``spread`` shows each.
    attempts, retry_below:
        With ``attempts > 1``, an attempt whose CPU share is below ``retry_below`` is
        measured again, up to ``attempts`` in all, and the attempt with the highest CPU
        share is returned (``windows`` says how many windows were measured). For lower
        bounds on a busy loop on a shared machine.
    process:
        The :class:`~.process.ClientProcess` to connect from (default: the shared one).
    settle:
        Measuring starts once the server has accepted every client, or accepted none more
        for ``settle`` seconds (a one-at-a-time server accepts one; see :func:`idle_clients`).

    Returns
    -------
    IdleCost
        ``cpu`` is ``nan`` where per-thread CPU time is not available.

    >>> with PollingServer(interval=0) as server:                        # doctest: +SKIP
    ...     idle_cost(server, seconds=0.3, repeat=3, attempts=3, retry_below=0.8).cpu
    0.99
    """
    _check_windows(seconds, repeat, attempts)  # now, before any client connects
    with idle_clients(server, clients, process=process, stall=settle) as held:
        return idle_cost_held(
            server, held, seconds, repeat=repeat, attempts=attempts, retry_below=retry_below
        )


def idle_cost_held(
    server,
    held: HeldClients,
    seconds: float,
    *,
    repeat: int = 1,
    attempts: int = 1,
    retry_below: float = 0.0,
) -> IdleCost:
    """:func:`idle_cost`, inside an :func:`idle_clients` block that the caller holds (to
    measure more with the same clients connected: the sweep, the comparison)."""
    _check_windows(seconds, repeat, attempts)
    best = None
    measured = 0
    for _ in range(attempts):
        with gc_paused():
            windows = _measure_windows(server, seconds, repeat)
        measured += repeat
        cost = _pooled(windows, loop_rounds(server) > 0, held.accepted, measured)
        if best is None or cost.cpu > best.cpu:
            best = cost
        if not cost.cpu < retry_below:  # enough (or nan: unsupported, no point retrying)
            break
    assert best is not None  # attempts >= 1
    return dataclasses.replace(best, windows=measured, opened=held.opened, errors=held.errors)
