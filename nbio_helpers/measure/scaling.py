"""How the cost of one wait grows with the number of watched sockets: select vs poll vs epoll.

``select()`` and ``poll()`` hand the kernel the whole list of descriptors on every call. A
call that may sleep first goes through every descriptor, asks it whether it is ready *and
puts the thread on its wait queue* (so that it can be woken), and at the end takes the
thread off every wait queue again (Linux ``fs/select.c``: ``do_select``, ``do_poll``,
``poll_freewait``). That work grows with N, even when one socket only is ready. ``epoll``
(Linux) and ``kqueue`` (macOS, BSD) keep the interest list and the wait-queue entries inside
the kernel between calls, so a wait costs time for the *ready* sockets only.

Usage::

    result = measure_scaling([10, 100, 1000, 10000])      # bounded: about 1.5 s
    result.slope("poll")      # ~1: ten times the sockets, ten times the time
    result.slope("epoll")     # ~0: flat
    result.floor["epoll"]     # seconds: the call itself with no idle socket (N = 0)
    plot_scaling(result)      # log-log, whiskers over the trials, the floor, descriptor 1024

What is timed: a wait that returns because one socket is ready. Each measurement watches N
*idle* sockets plus one that has a byte waiting, the ready one placed **last** (the highest
descriptor for ``select``, registered last for ``poll``), and times
``selector.select(timeout=1.0)``. Because the call may sleep, the kernel registers on every
idle socket before it reaches the ready one, then unregisters them all and returns at once:
the registration and the clean-up a real wait pays, without the sleep itself (a thread that
does sleep pays one more pass over the N sockets when it is woken, and the wake-up, which
does not depend on N). ``wait=False`` times ``select(timeout=0)`` instead, the check-only
call, in which the kernel registers nothing.

The idle sockets are unconnected UDP sockets: one descriptor each (a connected pair would take
two), never readable; for the kernel's readiness check any socket costs the same.

Which clock: the calling thread's CPU time (``time.thread_time()``), where that clock counts
in fine steps (Linux and macOS: ``clock_gettime(CLOCK_THREAD_CPUTIME_ID)``). The call does not
sleep, so its CPU time *is* its cost, the kernel's part included; wall time adds whatever time
the thread spent waiting for a core, which grows with the length of the call on a loaded
machine and bends the lines upwards. Measured on 2 cores with three busy processes beside
it (3 runs each): a registering ``poll()`` on 10,000 idle sockets took 12-16 ms of wall time
for 6.4-7.4 ms of CPU, and poll's slope read 1.65-1.73 by wall time, 1.48-1.52 by CPU time
(1.30-1.39 by either on the quiet machine; select 1.13-1.19 and epoll 0.00 in every case).
The CPU time still grows a little under load (other programs evict the caches), so assert
bounds, not figures. Where the thread clock advances in coarse ticks (Windows counts thread
time in scheduler ticks of about 15 ms), the wall clock is used instead;
``ScalingResult.clock`` says which one was.

``select()``'s limit is about descriptor *numbers*: it cannot watch a descriptor >= 1024
(FD_SETSIZE), however few sockets it watches; the process's other open files count too.
"""

from __future__ import annotations

import dataclasses
import math
import selectors
import socket
import statistics
import sys
import time

from nbio_helpers.limits import fd_limit, raise_fd_limit  # noqa: F401 - both stay importable from here
from nbio_helpers.measure.quiet import gc_paused
from nbio_helpers.models import FD_SETSIZE
from nbio_helpers.models.select_model import WINDOWS_SELECT_LIMIT

__all__ = [
    "ScalingResult",
    "available_selectors",
    "duplicate_above",
    "fit_slope",
    "measure_scaling",
    "plot_scaling",
    "thread_clock_is_fine",
]

FIT_FROM = 300
"""Slopes are fitted over the N at or above this (where the floor no longer dominates)."""


def available_selectors() -> dict[str, type]:
    """Selector classes this OS has, by short name: ``select``, ``poll``, ``epoll``, ``kqueue``.

    ``select`` is everywhere; ``poll`` everywhere but Windows; ``epoll`` on Linux; ``kqueue``
    on macOS and the BSDs. ``selectors.DefaultSelector`` is the last one listed.
    """
    found: dict[str, type] = {"select": selectors.SelectSelector}
    for name, attr in (
        ("poll", "PollSelector"),
        ("devpoll", "DevpollSelector"),
        ("epoll", "EpollSelector"),
        ("kqueue", "KqueueSelector"),
    ):
        if hasattr(selectors, attr):
            found[name] = getattr(selectors, attr)
    return found


def fit_slope(points: dict[int, float], fit_from: int = FIT_FROM) -> float:
    """Least-squares slope of log(time) against log(N) over the N >= ``fit_from``.

    1 means the time grows in proportion to N, 0 that it does not grow. If those N span
    less than a factor of 3 (``select`` stops near descriptor 1024), the next smaller N are
    taken in until they do. ``nan`` with fewer than two points.
    """
    measured = sorted((n, t) for n, t in points.items() if n > 0 and t > 0)
    chosen = [(n, t) for n, t in measured if n >= fit_from]
    smaller = [(n, t) for n, t in measured if n < fit_from]
    while smaller and (len(chosen) < 2 or chosen[-1][0] < 3 * chosen[0][0]):
        chosen.insert(0, smaller.pop())
    if len(chosen) < 2:
        return math.nan
    pairs = [(math.log(n), math.log(t)) for n, t in chosen]
    mx = statistics.fmean(x for x, _ in pairs)
    my = statistics.fmean(y for _, y in pairs)
    sxx = sum((x - mx) ** 2 for x, _ in pairs)
    return sum((x - mx) * (y - my) for x, y in pairs) / sxx if sxx else math.nan


@dataclasses.dataclass
class ScalingResult:
    """Seconds per call, by selector name and number of idle sockets N (N = 0 not included:
    see ``floor``).

    ``seconds[name][n]`` is the fastest of the trials (each the median of its batches of
    calls: other programs on the machine can only add time), ``spread[name][n]`` the
    ``(fastest, slowest)`` trial. ``skipped`` says which (selector, N) could not be measured, and
    why; ``select_limit`` is the largest N that ``select()`` could watch here (its line
    ends there, at descriptor 1024), or None if it never reached it.
    """

    seconds: dict[str, dict[int, float]]
    skipped: dict[str, dict[int, str]]
    spread: dict[str, dict[int, tuple]] = dataclasses.field(default_factory=dict)
    floor: dict[str, float] = dataclasses.field(default_factory=dict)
    """Seconds per call with no idle socket (N = 0): the Python call and the system call."""
    select_limit: int | None = None
    wait: bool = True
    """True: a registering wait (``timeout=1.0``, returns at once); False: ``timeout=0``."""
    clock: str = "thread_time"
    """What was timed: ``"thread_time"`` (the thread's CPU) or ``"perf_counter"`` (wall time)."""

    def table(self) -> list[dict]:
        """One row per measurement: ``selector``, ``n``, ``us_per_call`` (microseconds)."""
        return [
            {"selector": name, "n": n, "us_per_call": secs * 1e6}
            for name, by_n in self.seconds.items()
            for n, secs in sorted(by_n.items())
        ]

    def growth(self, name: str) -> float:
        """Time per call at the largest N measured divided by the time at the smallest N."""
        by_n = self.seconds[name]
        return by_n[max(by_n)] / by_n[min(by_n)]

    def slope(self, name: str, fit_from: int = FIT_FROM) -> float:
        """The log-log slope of ``name``'s times over N >= ``fit_from`` (:func:`fit_slope`)."""
        return fit_slope(self.seconds.get(name, {}), fit_from)

    def slopes(self, fit_from: int = FIT_FROM) -> dict[str, float]:
        """:meth:`slope` of every selector measured."""
        return {name: self.slope(name, fit_from) for name in self.seconds}

    def per_socket(self, name: str) -> float:
        """Seconds each idle socket adds to a call: (time at the largest N - floor) / N."""
        by_n = self.seconds.get(name) or {}
        if not by_n or name not in self.floor:
            return math.nan
        n = max(by_n)
        return (by_n[n] - self.floor[name]) / n


def thread_clock_is_fine(probe: float = 0.02, fine: float = 50e-6) -> bool:
    """Does ``time.thread_time()`` advance in steps of at most ``fine`` seconds here?

    Found by reading the clock while this thread works, for at most ``probe`` seconds (the
    clock's advertised resolution is not its real step: Windows reports 100 ns and advances
    by scheduler ticks).
    """
    steps: list[float] = []
    last = time.thread_time()
    deadline = time.perf_counter() + probe
    while len(steps) < 5 and time.perf_counter() < deadline:
        now = time.thread_time()
        if now != last:
            steps.append(now - last)
            last = now
    return len(steps) >= 3 and statistics.median(steps) <= fine


def _per_call(sel, timeout: float, budget: float, clock=time.thread_time) -> list[float]:
    """Seconds per ``sel.select(timeout)`` call, one figure per batch, by ``clock``, within
    ``budget`` seconds of wall time."""
    start = clock()
    ready = sel.select(timeout)  # also warms the caches
    first = clock() - start
    if len(ready) != 1:
        raise RuntimeError(f"expected one ready socket, got {len(ready)}")
    batch = max(1, min(200, int(0.002 / max(first, 1e-7))))
    samples: list[float] = []
    deadline = time.perf_counter() + budget
    while len(samples) < 3 or (time.perf_counter() < deadline and len(samples) < 100):
        start = clock()
        for _ in range(batch):
            sel.select(timeout)
        samples.append((clock() - start) / batch)
    return samples


def duplicate_above(active_r: socket.socket, above: int) -> socket.socket:
    """A duplicate of ``active_r`` at the lowest free descriptor above ``above`` (POSIX), so
    that ``select()`` reaches it last; ``active_r`` itself elsewhere (Windows, which has no
    ``fcntl``): close it if it is not ``active_r``."""
    try:
        import fcntl
    except ImportError:
        return active_r
    return socket.socket(fileno=fcntl.fcntl(active_r.fileno(), fcntl.F_DUPFD, above + 1))


def measure_scaling(
    ns=(10, 30, 100, 300, 1000, 3000, 10000),
    names=None,
    *,
    wait: bool = True,
    trials: int = 3,
    budget_per_point: float = 0.015,
    clock: str | None = None,
) -> ScalingResult:
    """Time one wait of each selector with N idle sockets and one ready socket (see the
    module's docstring for what exactly is timed).

    Parameters
    ----------
    ns:
        Numbers of idle sockets. N = 0 is always measured too (``floor``). N beyond the
        descriptor limit are skipped (the soft limit is raised where the OS allows);
        ``select`` skips N whose descriptors reach 1024 (512 sockets on Windows), and is
        measured once more at the largest N it can take.
    names:
        Selector names from :func:`available_selectors` (default: all of them).
    wait:
        True: a wait that registers (``timeout=1.0``); False: ``timeout=0``.
    trials:
        Each (selector, N) is timed this many times, interleaved; the fastest is kept and
        the range is in ``spread``.
    budget_per_point:
        Seconds of timing per (selector, N, trial); the whole call takes roughly
        ``(len(ns) + 1) * len(names) * trials * budget_per_point`` plus socket creation.
    clock:
        ``"thread_time"`` (this thread's CPU time) or ``"perf_counter"`` (wall time).
        Default: ``"thread_time"`` where it counts in fine steps (:func:`thread_clock_is_fine`),
        else ``"perf_counter"``.

    Returns
    -------
    ScalingResult
    """
    classes = available_selectors()
    names = list(classes) if names is None else list(names)
    if clock is None:
        clock = "thread_time" if thread_clock_is_fine() else "perf_counter"
    if clock not in ("thread_time", "perf_counter"):
        raise ValueError(f"clock must be 'thread_time' or 'perf_counter', not {clock!r}")
    timer = getattr(time, clock)
    timeout = 1.0 if wait else 0.0
    samples: dict[str, dict[int, list]] = {name: {} for name in names}
    skipped: dict[str, dict[int, str]] = {name: {} for name in names}
    limit = raise_fd_limit(max(ns) + 200)
    select_limit = None
    base_r, base_w = socket.socketpair()
    base_w.send(b"!")  # never read: the ready socket stays readable
    try:
        for n in [0, *sorted(ns)]:
            if limit is not None and n + 100 > limit:
                for name in names:
                    skipped[name][n] = f"the descriptor limit is {limit}"
                continue
            idle: list[socket.socket] = []
            active = None
            try:
                idle = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
                highest = max([base_r.fileno(), base_w.fileno()] + [s.fileno() for s in idle])
                active = duplicate_above(base_r, highest)
                plans, at_limit = [], False
                for name in names:
                    why = _select_cannot_take(name, idle + [active])
                    if why:
                        skipped[name][n] = why
                        at_limit = select_limit is None
                    else:
                        plans.append((name, idle, active))
                _time_plans(plans, classes, timeout, trials, budget_per_point, samples, timer)
                if at_limit:
                    # Once, at the largest set select() can take: its line ends there.
                    watched, ready = _largest_select_set(idle, base_r)
                    if watched:
                        select_limit = len(watched)
                        _time_plans(
                            [("select", watched, ready)],
                            classes,
                            timeout,
                            trials,
                            budget_per_point,
                            samples,
                            timer,
                        )
                        if ready is not None and ready is not base_r:
                            ready.close()
            finally:
                for sock in idle:
                    sock.close()
                if active is not None and active is not base_r:
                    active.close()
    finally:
        base_r.close()
        base_w.close()
    # The least disturbed trial: other programs on the machine can only add time.
    seconds = {
        name: {n: min(v) for n, v in by_n.items() if n > 0} for name, by_n in samples.items()
    }
    spread = {
        name: {n: (min(v), max(v)) for n, v in by_n.items() if n > 0}
        for name, by_n in samples.items()
    }
    floor = {name: min(by_n[0]) for name, by_n in samples.items() if 0 in by_n}
    for name in skipped:
        skipped[name].pop(0, None)
    return ScalingResult(seconds, skipped, spread, floor, select_limit, wait, clock)


def _time_plans(plans, classes, timeout, trials, budget, samples, timer) -> None:
    """Time each ``(name, idle sockets, ready socket)``, ``trials`` times, interleaved."""
    for _ in range(trials):
        for name, watched, ready in plans:
            with classes[name]() as sel:
                for sock in watched:
                    sel.register(sock, selectors.EVENT_READ)
                sel.register(ready, selectors.EVENT_READ)  # last: poll() reaches it last
                with gc_paused():
                    point = _per_call(sel, timeout, budget, timer)
            samples[name].setdefault(len(watched), []).append(statistics.median(point))


def _largest_select_set(idle: list, base_r) -> tuple[list, socket.socket | None]:
    """The idle sockets that select() can watch, and a ready socket above them all, below
    descriptor 1024 (POSIX; on Windows: 511 sockets and ``base_r``). ``([], None)`` if none."""
    if sys.platform == "win32":
        return idle[: WINDOWS_SELECT_LIMIT - 1], base_r
    try:
        import fcntl
    except ImportError:
        return [], None
    below = sorted((s for s in idle if s.fileno() < FD_SETSIZE - 1), key=socket.socket.fileno)
    if not below:
        return [], None
    # The ready socket takes the place of the highest idle one below the limit.
    top = below.pop()
    spot = top.fileno()
    top.close()
    idle.remove(top)
    ready = socket.socket(fileno=fcntl.fcntl(base_r.fileno(), fcntl.F_DUPFD, spot))
    if ready.fileno() >= FD_SETSIZE:
        ready.close()
        return [], None
    return [s for s in below if s.fileno() < ready.fileno()], ready


def _select_cannot_take(name: str, socks: list) -> str:
    if name != "select":
        return ""
    if sys.platform == "win32":
        too_many = len(socks) > WINDOWS_SELECT_LIMIT
        return (
            f"select() takes at most {WINDOWS_SELECT_LIMIT} sockets on Windows" if too_many else ""
        )
    if max(s.fileno() for s in socks) >= FD_SETSIZE:
        return (
            f"descriptor {FD_SETSIZE} reached (FD_SETSIZE: select() takes descriptor "
            f"numbers below {FD_SETSIZE})"
        )
    return ""


def plot_scaling(result: ScalingResult, ax=None, title: str | None = None):
    """Microseconds per call against N on log-log axes, one line per selector (slope in the
    legend), whiskers over the trials, each selector's floor (N = 0) dotted, and where
    ``select`` stops: descriptor 1024. Returns the Figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
    else:
        fig = ax.figure
    for name, by_n in result.seconds.items():
        if not by_n:
            continue
        ns = sorted(by_n)
        us = [by_n[n] * 1e6 for n in ns]
        spread = result.spread.get(name, {})
        err = None
        if all(n in spread for n in ns):
            err = [
                [u - spread[n][0] * 1e6 for n, u in zip(ns, us)],
                [spread[n][1] * 1e6 - u for n, u in zip(ns, us)],
            ]
        slope = result.slope(name)
        label = name if math.isnan(slope) else f"{name} (slope {slope:.2f})"
        line = ax.errorbar(ns, us, yerr=err, marker="o", capsize=3, label=label)
        if name in result.floor:
            ax.axhline(result.floor[name] * 1e6, color=line[0].get_color(), ls=":", lw=1)
    if result.floor:
        ax.plot([], [], ":", color="gray", label="floor: N = 0, the call itself")
    if result.select_limit:
        ax.axvline(result.select_limit, color="grey", linestyle="--", linewidth=1)
        ax.annotate(
            "descriptor 1024\n(select stops)",
            (result.select_limit, 0.98),
            xycoords=("data", "axes fraction"),
            ha="right",
            va="top",
            color="grey",
            fontsize="small",
            xytext=(-4, 0),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("idle sockets watched (N)")
    what = "a wait that returns at once" if result.wait else "select(timeout=0)"
    cost = "µs of CPU per call" if result.clock == "thread_time" else "µs per call"
    ax.set_ylabel(f"{cost}\n({what}, one socket ready)")
    ax.set_title(title or "Cost of one wait as the number of sockets grows")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return fig
