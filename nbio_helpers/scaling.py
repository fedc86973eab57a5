"""How the cost of one wait grows with the number of watched sockets: select vs poll vs epoll.

``select()`` and ``poll()`` hand the kernel the whole list of descriptors on every call, and
the kernel checks each one: the cost grows with N even when only one socket is ready.
``epoll`` (Linux) and ``kqueue`` (macOS, BSD) keep the interest list inside the kernel, so a
wait costs time for the *ready* sockets only.

Usage::

    result = measure_scaling([10, 100, 1000, 5000])      # bounded: about a second
    result.table()            # [{'selector': 'select', 'n': 10, 'us_per_call': 2.1}, ...]
    plot_scaling(result)      # log-log figure, one line per selector

Each measurement watches N *idle* sockets plus one that always has a byte waiting, and times
``selector.select(timeout=0)`` (which then returns exactly one ready socket). The idle sockets
are unconnected UDP sockets: one descriptor each (a connected pair would take two), never
readable - for the kernel's readiness check any socket costs the same.
"""
from __future__ import annotations

import dataclasses
import selectors
import socket
import statistics
import sys
import time

from .limits import fd_limit, raise_fd_limit  # noqa: F401 - both stay importable from here
from .models import FD_SETSIZE
from .models.select_model import WINDOWS_SELECT_LIMIT


def available_selectors() -> dict[str, type]:
    """Selector classes this OS has, by short name: ``select``, ``poll``, ``epoll``, ``kqueue``.

    ``select`` is everywhere; ``poll`` everywhere but Windows; ``epoll`` on Linux; ``kqueue``
    on macOS and the BSDs. ``selectors.DefaultSelector`` is the last one listed.
    """
    found = {"select": selectors.SelectSelector}
    for name, attr in (("poll", "PollSelector"), ("devpoll", "DevpollSelector"),
                       ("epoll", "EpollSelector"), ("kqueue", "KqueueSelector")):
        if hasattr(selectors, attr):
            found[name] = getattr(selectors, attr)
    return found


@dataclasses.dataclass
class ScalingResult:
    """Seconds per ``select(timeout=0)`` call, by selector name and number of idle sockets.

    ``skipped`` says which (selector, N) could not be measured, and why (e.g. a descriptor
    beyond ``select()``'s FD_SETSIZE, or the process's descriptor limit).
    """

    seconds: dict[str, dict[int, float]]
    skipped: dict[str, dict[int, str]]

    def table(self) -> list[dict]:
        """One row per measurement: ``selector``, ``n``, ``us_per_call`` (microseconds)."""
        return [{"selector": name, "n": n, "us_per_call": secs * 1e6}
                for name, by_n in self.seconds.items() for n, secs in sorted(by_n.items())]

    def growth(self, name: str) -> float:
        """Time per call at the largest N measured divided by the time at the smallest N."""
        by_n = self.seconds[name]
        return by_n[max(by_n)] / by_n[min(by_n)]


def _time_per_call(sel, budget: float, batch: int = 20) -> float:
    """Median over batches of the time one ``sel.select(0)`` takes, within ``budget`` seconds."""
    samples = []
    deadline = time.perf_counter() + budget
    while len(samples) < 3 or time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(batch):
            ready = sel.select(0)
        samples.append((time.perf_counter() - start) / batch)
        if len(ready) != 1:
            raise RuntimeError(f"expected one ready socket, got {len(ready)}")
        if len(samples) >= 200:
            break
    return statistics.median(samples)


def measure_scaling(ns=(10, 30, 100, 300, 1000, 3000), names=None, *,
                    budget_per_point: float = 0.02) -> ScalingResult:
    """Time one wait of each selector with N idle sockets and one ready socket.

    Parameters
    ----------
    ns:
        Numbers of idle sockets. N beyond the descriptor limit are skipped (the soft limit is
        raised where the OS allows); ``select`` skips N whose descriptors pass FD_SETSIZE
        (512 sockets on Windows).
    names:
        Selector names from :func:`available_selectors` (default: all of them).
    budget_per_point:
        Seconds of timing per (selector, N); the whole call takes roughly
        ``len(ns) * len(names) * budget_per_point`` plus socket creation.

    Returns
    -------
    ScalingResult
    """
    classes = available_selectors()
    names = list(classes) if names is None else list(names)
    seconds: dict[str, dict[int, float]] = {name: {} for name in names}
    skipped: dict[str, dict[int, str]] = {name: {} for name in names}
    limit = raise_fd_limit(max(ns) + 200)
    active_r, active_w = socket.socketpair()
    active_w.send(b"!")  # never read: the active socket stays readable
    try:
        for n in sorted(ns):
            if limit is not None and n + 100 > limit:
                for name in names:
                    skipped[name][n] = f"the descriptor limit is {limit}"
                continue
            idle = []
            try:
                idle = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
                for name in names:
                    why = _select_cannot_take(name, idle + [active_r])
                    watched = idle
                    if why:
                        skipped[name][n] = why
                        # Measure select once more at the largest N it can take, if it has
                        # not been measured that far yet: its line then ends at its limit.
                        watched = _largest_select_set(idle, active_r)
                        if not watched or len(watched) <= max(seconds[name], default=0):
                            continue
                    with classes[name]() as sel:
                        for sock in watched:
                            sel.register(sock, selectors.EVENT_READ)
                        sel.register(active_r, selectors.EVENT_READ)
                        seconds[name][len(watched)] = _time_per_call(sel, budget_per_point)
            finally:
                for sock in idle:
                    sock.close()
    finally:
        active_r.close()
        active_w.close()
    return ScalingResult({k: v for k, v in seconds.items()}, skipped)


def _largest_select_set(idle: list, active) -> list:
    """The idle sockets that select() can watch together with ``active`` (may be [])."""
    if sys.platform == "win32":
        return idle[:WINDOWS_SELECT_LIMIT - 1]
    if active.fileno() >= FD_SETSIZE:
        return []
    return [s for s in idle if s.fileno() < FD_SETSIZE]


def _select_cannot_take(name: str, socks: list) -> str:
    if name != "select":
        return ""
    if sys.platform == "win32":
        too_many = len(socks) > WINDOWS_SELECT_LIMIT
        return f"select() takes at most {WINDOWS_SELECT_LIMIT} sockets on Windows" \
            if too_many else ""
    if max(s.fileno() for s in socks) >= FD_SETSIZE:
        return f"descriptors beyond FD_SETSIZE ({FD_SETSIZE})"
    return ""


def plot_scaling(result: ScalingResult, ax=None, title: str | None = None):
    """Microseconds per call against N on log-log axes, one line per selector.

    Returns the Figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots()
    else:
        fig = ax.figure
    for name, by_n in result.seconds.items():
        if not by_n:
            continue
        ns = sorted(by_n)
        ax.plot(ns, [by_n[n] * 1e6 for n in ns], marker="o", label=name)
    if "select" in result.seconds and result.seconds["select"]:
        ax.axvline(FD_SETSIZE, color="grey", linestyle=":", linewidth=1)
        ax.annotate("FD_SETSIZE", (FD_SETSIZE, 0.98), xycoords=("data", "axes fraction"),
                    rotation=90, ha="right", va="top", color="grey", fontsize="small")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("idle sockets watched (N)")
    ax.set_ylabel("µs per call (one socket ready)")
    ax.set_title(title or "Cost of one wait as the number of sockets grows")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return fig
