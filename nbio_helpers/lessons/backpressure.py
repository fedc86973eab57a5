"""Backpressure, shown: a client that sends fast and never reads.

An echo server that keeps reading such a client must keep its replies somewhere: in the
connection's output buffer, which grows as long as the client sends. With backpressure the
server stops reading that client once the buffer passes the high-water mark (``PAUSE`` in the
event log), so the client's bytes wait in the kernel's socket buffers, those fill, and the
client's own ``send()`` blocks: memory stays bounded and the fast sender is slowed down.

Usage::

    server = start_server("selectors", high_water=256 * 1024, sock_buffer_size=64 * 1024)
    with Flooder(server.address) as flooder:
        flooder.flood(total=8 * 2**20, seconds=2)   # stops early once send() stalls
        flooder.stalled                             # True: the server stopped reading
        flooder.drain(seconds=2)                    # now read: the server resumes
    series = buffer_series(server.events)
    plot_buffer(series, high_water=server.high_water, reading_from=flooder.reading_from)

    # with and without backpressure, each on its own scale, the moments that matter zoomed:
    plot_backpressure(series, without, server.high_water,
                      held_reading_from=flooder.reading_from, free_reading_from=greedy.reading_from)
"""

from __future__ import annotations

import bisect
import dataclasses
import socket
import time

from nbio_helpers.addresses import address_family
from nbio_helpers.clients import OwnsSocket
from nbio_helpers.connection import echo_upper
from nbio_helpers.events import PAUSE, RECV, RESUME, SEND
from nbio_helpers.nonblocking import READ, WRITE, Readiness

PATTERN = b"a fast client that never reads. "


class Flooder(OwnsSocket):
    """A client that sends as fast as the connection takes, and reads nothing until told to.

    Parameters
    ----------
    address:
        ``(host, port)`` of an echo server.
    sock_buffer_size:
        ``SO_SNDBUF``/``SO_RCVBUF`` of the client's socket (small buffers fill sooner), as
        the server's ``sock_buffer_size`` sets them on its side.
    chunk:
        Bytes per ``send()``.
    """

    def __init__(
        self,
        address,
        sock_buffer_size: int = 64 * 1024,
        chunk: int = 64 * 1024,
        timeout: float = 5.0,
    ):
        self.sock = socket.socket(address_family(address[0]))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sock_buffer_size)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sock_buffer_size)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.sock.setblocking(False)
        self.chunk = chunk
        self.sent = 0  # bytes the kernel accepted from us
        self.received = 0  # bytes of echo read back (by drain)
        self.stalled = False  # send() could not go on: nobody reads our bytes any more
        self.echo_ok = True  # every byte read back was the upper-cased byte sent
        self.reading_from: float | None = None  # time.monotonic() when drain() began

    def _data(self, start: int, n: int) -> bytes:
        """The ``n`` bytes of the endless pattern starting at offset ``start``."""
        offset = start % len(PATTERN)
        reps = (offset + n) // len(PATTERN) + 1
        return (PATTERN * reps)[offset : offset + n]

    def flood(self, total: int, seconds: float, stall: float = 0.2) -> int:
        """Send until ``total`` bytes are sent, ``seconds`` pass, or ``send()`` has been unable
        to take anything for ``stall`` seconds (then :attr:`stalled` is True).

        Never reads. Returns :attr:`sent`, the bytes sent so far.
        """
        deadline = time.monotonic() + seconds
        with Readiness(self.sock) as ready:
            while self.sent < total and time.monotonic() < deadline:
                data = self._data(self.sent, min(self.chunk, total - self.sent))
                try:  # try, and wait at most `stall` for room if there is none
                    self.sent += ready.call(
                        WRITE,
                        self.sock.send,
                        data,
                        deadline=min(deadline, time.monotonic() + stall),
                    )
                except TimeoutError:
                    self.stalled = time.monotonic() < deadline
                    break
        return self.sent

    def drain(self, seconds: float) -> int:
        """Now read: receive the echo of everything sent (checking it) for at most ``seconds``.

        Returns :attr:`received`. :attr:`echo_ok` says whether every byte was right.
        """
        deadline = time.monotonic() + seconds
        if self.reading_from is None:
            self.reading_from = time.monotonic()
        with Readiness(self.sock) as ready:
            while self.received < self.sent and time.monotonic() < deadline:
                try:
                    data = ready.call(READ, self.sock.recv, 256 * 1024, deadline=deadline)
                except TimeoutError:
                    break
                if not data:
                    break
                if data != echo_upper(self._data(self.received, len(data))):
                    self.echo_ok = False
                self.received += len(data)
        return self.received


@dataclasses.dataclass
class BufferSeries:
    """Size of one connection's output buffer over time, rebuilt from a server's event log.

    ``t`` in seconds from the first event, ``size`` in bytes after each event; ``pauses`` and
    ``resumes`` are the times of the ``PAUSE`` and ``RESUME`` events; ``t0`` is the
    ``time.monotonic()`` of the first event (``t`` = 0).
    """

    t: list[float]
    size: list[int]
    pauses: list[float]
    resumes: list[float]
    t0: float = 0.0

    @property
    def peak(self) -> int:
        """The largest the buffer ever was, in bytes."""
        return max(self.size, default=0)


def buffer_series(events, conn: int | None = None) -> BufferSeries:
    """Rebuild a connection's output buffer size from ``RECV`` (+ bytes) and ``SEND`` (- bytes).

    Works for the models built on :class:`~nbio_helpers.connection.Connection`, whose reply to
    a ``recv()`` is as long as what was received. ``events`` is an
    :class:`~nbio_helpers.events.EventLog` or a list of events; ``conn`` picks the connection
    (default: the first one that received data).
    """
    if hasattr(events, "events"):
        events = events.events()
    if conn is None:
        conn = next((e.conn for e in events if e.kind == RECV), None)
    mine = [e for e in events if e.conn == conn and e.kind in (RECV, SEND, PAUSE, RESUME)]
    if not mine:
        return BufferSeries([], [], [], [])
    t0 = mine[0].t
    t, size, pauses, resumes, pending = [0.0], [0], [], [], 0
    for e in mine:
        if e.kind == RECV:
            pending += e.nbytes
        elif e.kind == SEND:
            pending -= e.nbytes
        elif e.kind == PAUSE:
            pauses.append(e.t - t0)
            continue
        else:
            resumes.append(e.t - t0)
            continue
        t.append(e.t - t0)
        size.append(pending)
    return BufferSeries(t, size, pauses, resumes, t0)


def plot_buffer(
    series: BufferSeries,
    high_water: int | None = None,
    ax=None,
    title: str | None = None,
    reading_from: float | None = None,
):
    """The output buffer's size (KiB) over time (ms), with the high-water mark and the
    PAUSE/RESUME moments. Returns the Figure.

    ``reading_from`` (a ``time.monotonic()`` value, e.g. :attr:`Flooder.reading_from`) shades
    the time before it, while the client read nothing."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots()
    else:
        fig = ax.figure
    kib = _draw_buffer(ax, series, 1024, "tab:blue", reading_from if series.t else None)
    if high_water is not None:
        ax.axhline(
            high_water / 1024, color="tab:red", linestyle="--", linewidth=1, label="high-water mark"
        )
    top = max(kib, default=0)
    for i, x in enumerate(series.pauses):
        ax.plot(
            x * 1e3, top, "v", color="tab:red", label="PAUSE (stop reading)" if i == 0 else None
        )
    for i, x in enumerate(series.resumes):
        ax.plot(x * 1e3, top, "^", color="tab:green", label="RESUME" if i == 0 else None)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("pending output (KiB)")
    ax.set_title(title or "One connection's output buffer")
    # From 0, and tall enough for this series even when the y axis is shared with another.
    ax.set_ylim(0, max(ax.get_ylim()[1], top * 1.08))
    ax.legend(loc="best", frameon=True, framealpha=0.9, edgecolor="none")
    return fig


def _draw_buffer(ax, series: BufferSeries, unit: int, color: str, reading_from) -> list[float]:
    """Draw ``series`` on ``ax``: the buffer's size in bytes / ``unit`` over time (ms), shaded
    grey until ``reading_from`` (a ``time.monotonic()`` value; None: no shading), while the
    client read nothing. Returns the sizes drawn."""
    if reading_from is not None:
        ax.axvspan(
            0,
            (reading_from - series.t0) * 1e3,
            color="0.92",
            zorder=0,
            label="client reads nothing",
        )
    sizes = [size / unit for size in series.size]
    ax.step([x * 1e3 for x in series.t], sizes, where="post", color=color, label="output buffer")
    return sizes


def level_at(series: BufferSeries, t: float) -> int:
    """The buffer's size (bytes) just after time ``t`` (seconds from the series' start)."""
    if not series.t:
        return 0
    i = bisect.bisect_right(series.t, t) - 1
    return series.size[max(i, 0)]


def _zoom_windows(held: BufferSeries, reading_at: float | None) -> list[tuple[float, float]]:
    """Two time windows (ms) of a held-back series: its start up to just past the first
    PAUSE, and its end from just before the client started reading."""
    end = held.t[-1] * 1e3
    first_pause = held.pauses[0] * 1e3 if held.pauses else end
    start = (0.0, min(end, first_pause + max(2.0, first_pause)))
    reading = (
        reading_at if reading_at is not None else (held.resumes[0] * 1e3 if held.resumes else end)
    )
    margin = max(1.0, 0.1 * (end - reading))
    return [start, (max(0.0, reading - margin), end + margin)]


def plot_backpressure(
    held: BufferSeries,
    free: BufferSeries,
    high_water: int,
    *,
    low_water: int | None = None,
    held_reading_from: float | None = None,
    free_reading_from: float | None = None,
    figsize=(12, 3.6),
):
    """The output buffer of a connection with backpressure and of one without, side by side,
    each on a scale that shows what happens. Returns the Figure (three panels).

    Left and middle, ``held`` (with backpressure) on a shared y axis in KiB, zoomed in time
    on its two moments: the start (the buffer fills to the high-water mark, PAUSE ▼) and the
    end (the client reads, the buffer drains, RESUME ▲ at the low-water mark, and any
    further round). The mark is dashed, the low-water mark (``low_water``, default a quarter
    of ``high_water``, the servers' default) dotted, PAUSE and RESUME drawn at the buffer's
    level. Right, ``free`` (no backpressure) in MiB, the mark drawn for scale.
    Grey: the client reads nothing (before ``*_reading_from``, ``time.monotonic()`` values
    such as :attr:`Flooder.reading_from`).
    """
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=figsize)
    grid = fig.add_gridspec(1, 3, width_ratios=[1, 1, 1.3], wspace=0.08)
    ax_start = fig.add_subplot(grid[0])
    ax_end = fig.add_subplot(grid[1], sharey=ax_start)
    ax_free = fig.add_subplot(grid[2])
    mark_kib = high_water / 1024
    low_kib = (high_water // 4 if low_water is None else low_water) / 1024
    reading_at = (
        None if held_reading_from is None or not held.t else (held_reading_from - held.t0) * 1e3
    )
    if held.t:
        ms = [x * 1e3 for x in held.t]
        kib = [size / 1024 for size in held.size]
        for ax, (lo, hi) in zip((ax_start, ax_end), _zoom_windows(held, reading_at)):
            if reading_at is not None and reading_at > lo:
                ax.axvspan(lo, min(hi, reading_at), color="0.92", zorder=0)
            ax.step(ms, kib, where="post", color="tab:blue", label="output buffer")
            ax.axhline(mark_kib, color="tab:red", ls="--", lw=1, label="high-water mark")
            ax.axhline(low_kib, color="tab:green", ls=":", lw=1, label="low-water mark (resume)")
            for times, marker, color, label in (
                (held.pauses, "v", "tab:red", "PAUSE: stop reading"),
                (held.resumes, "^", "tab:green", "RESUME"),
            ):
                for i, t in enumerate(times):
                    ax.plot(
                        t * 1e3,
                        level_at(held, t) / 1024,
                        marker,
                        color=color,
                        ms=9,
                        ls="none",
                        label=label if i == 0 else None,
                    )
            ax.set_xlim(lo, hi)
            ax.set_xlabel("time (ms)")
        handles, labels = ax_start.get_legend_handles_labels()
        fig.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.37, 0.0),
            ncol=3,
            fontsize=8,
            frameon=False,
        )
    ax_start.set_ylim(0, max(mark_kib, held.peak / 1024) * 1.3)
    ax_start.set_ylabel("pending output (KiB)")
    ax_start.set_title("with backpressure:\nfills to the mark, PAUSE ▼", fontsize=10)
    ax_end.set_title("the client reads:\nit drains, RESUME ▲", fontsize=10)
    plt.setp(ax_end.get_yticklabels(), visible=False)
    if free.t:
        mib = _draw_buffer(ax_free, free, 2**20, "tab:purple", free_reading_from)
        ax_free.axhline(
            high_water / 2**20, color="tab:red", ls="--", lw=1, label="the mark, for scale"
        )
        ax_free.set_ylim(0, max(max(mib), high_water / 2**20) * 1.1)
        ax_free.legend(loc="upper right", fontsize=8, framealpha=0.9)
    ax_free.set_ylabel("pending output (MiB)")
    ax_free.set_xlabel("time (ms)")
    ax_free.yaxis.set_label_position("right")
    ax_free.yaxis.tick_right()
    ax_free.set_title("without backpressure:\nit holds what the client sends", fontsize=10)
    fig.suptitle("One connection's output buffer (grey: the client reads nothing)", y=1.07)
    return fig


__all__ = [
    "PATTERN",
    "BufferSeries",
    "Flooder",
    "buffer_series",
    "level_at",
    "plot_backpressure",
    "plot_buffer",
]
