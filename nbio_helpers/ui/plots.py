"""Plots drawn from real runs: the classic I/O-model timeline, from an event log.

Usage (in a notebook cell tagged ``nbval-ignore-output``)::

    fig = plot_timeline(log.events(), title="a blocking recv()")
    plt.show()

Assign the result (or end the cell with ``plt.show()``): the figure is made with pyplot,
so the inline backend shows it at the end of the cell, and a bare ``plot_timeline(...)``
as the cell's last line would show it a second time as the cell's value. A server's log
and a traced client's log share one clock, so they can be drawn together::

    fig = plot_timeline(merge_events(server.events, client_log), labels={1: "server: A"})

Each connection (the ``conn`` of its events) gets a lane of two rows:

* **application**: each ``recv()`` call (a ▼ mark, when the call was traced with
  :class:`~nbio_helpers.tracing.TracedSocket`), the time spent blocked inside it (a bar),
  each ``BlockingIOError`` (a red tick: there may be thousands, drawn as one collection),
  data returned (▲), end of stream (■), a timeout or error (✕), accepts and sends;
* **kernel (inferred)**: the two phases of every read, *wait for data* (from the first
  attempt until data is there) and *copy data to user*, inferred from the application's
  timestamps and, when given (``ready=``), from the times the data became available:
  nothing here traces the kernel itself. The copy is short (microseconds for a few bytes,
  more for more), so it is drawn with a minimum width that is not to scale. With ``ready``,
  the copy never starts before the data existed, and data that sat unread until a later
  ``recv()`` call is drawn as *data waiting to be read*.

Events without a connection (the polling loop's ``accept()`` attempts, wake-ups) go to one
"server loop" row. Time is in milliseconds from ``t0`` (default: the first event).

Every artist is one collection per kind of mark (never one artist per event) and carries a
``gid`` (``"nbio-wait"``, ``"nbio-copy"``, ``"nbio-buffered"``, ``"nbio-would-block"``...;
see :data:`GIDS`) so tests can find it.
"""

from __future__ import annotations

import bisect
import collections
import math
from collections.abc import Iterable

from nbio_helpers import events as kinds
from nbio_helpers.events import Event, EventLog

# What each artist is, its gid, and how it looks. Spans are bars, ticks are short vertical
# lines, marks are markers.
SPANS = {
    "wait": ("nbio-wait", "kernel: wait for data", "#c6dbef"),
    "copy": ("nbio-copy", "kernel: copy data to user (drawn wider)", "#08519c"),
    "blocked": ("nbio-blocked", "application blocked in recv()", "#fdd0a2"),
    "buffered": ("nbio-buffered", "kernel: data waiting to be read", "#a1d99b"),
}
TICKS = {
    kinds.WOULD_BLOCK: ("nbio-would-block", "recv(): BlockingIOError", "#d62728"),
    kinds.SEND_WOULD_BLOCK: ("nbio-send-would-block", "send(): BlockingIOError", "#9467bd"),
    kinds.ACCEPT_WOULD_BLOCK: ("nbio-accept-would-block", "accept(): BlockingIOError", "#ff9896"),
    kinds.WAKEUP: ("nbio-wakeup", "loop wakes up", "#7f7f7f"),
}
MARKS = {
    kinds.RECV_CALL: ("nbio-recv-call", "recv() called", "v", "#252525"),
    kinds.RECV: ("nbio-data", "data returned", "^", "#2ca02c"),
    kinds.EOF: ("nbio-eof", "b'' (end of stream)", "s", "#6a3d9a"),
    kinds.ERROR: ("nbio-error", "timeout / error", "X", "#d62728"),
    kinds.ACCEPT: ("nbio-accept", "accepted", ">", "#636363"),
    kinds.SEND: ("nbio-send", "sent", "<", "#1f77b4"),
    kinds.CLOSE: ("nbio-close", "closed", "|", "#636363"),
}
# recv() calls sit above the row's centre, their results below, so both stay visible.
_MARK_OFFSETS = {kinds.RECV_CALL: -0.28, kinds.RECV: 0.28, kinds.EOF: 0.28, kinds.ERROR: 0.28}
GIDS = {key: spec[0] for table in (SPANS, TICKS, MARKS) for key, spec in table.items()}
"""Kind (or span name) -> the ``gid`` of the artist that draws it."""

SERVER_LOOP = "server loop"
_BAR = 0.5  # bar height, in row units
_TICK = 0.35  # half-height of a tick


class _Lanes:
    """Rows of the figure: two per connection (application, kernel), one for the loop."""

    def __init__(self, order, labels):
        self.rows: list[str] = []
        self.app: dict = {}
        self.kernel: dict = {}
        several = sum(1 for c in order if c is not None) > 1
        for conn in order:
            if conn is None:
                self.app[None] = self._add(SERVER_LOOP)
                continue
            name = labels.get(conn, f"conn {conn}" if isinstance(conn, int) else str(conn))
            self.app[conn] = self._add(f"{name}: application" if several else "application")
            self.kernel[conn] = self._add(
                f"{name}: kernel (inferred)" if several else "kernel (inferred)"
            )

    def _add(self, label: str) -> int:
        self.rows.append(label)
        return len(self.rows) - 1


def plot_timeline(
    events: EventLog | Iterable[Event],
    *,
    title: str | None = None,
    ax=None,
    t0: float | None = None,
    labels: dict | None = None,
    lanes=None,
    copy_width: float | None = None,
    legend: bool = True,
    ready=None,
):
    """Draw an event log as the classic I/O-model figure; return the matplotlib Figure.

    Parameters
    ----------
    events:
        An :class:`EventLog` or a list of :class:`Event` (e.g. ``merge_events(a, b)``).
    title:
        Axes title.
    ax:
        Draw into this Axes (default: a new figure, sized to the number of rows).
    t0:
        The time (``time.monotonic()`` seconds) shown as 0 ms. Default: the first event.
    labels:
        ``{conn: "name"}`` for the lanes (default ``"conn 3"``, or the label itself if a str).
    lanes:
        Which connections to draw, in order, top to bottom (default: all, in order of first
        appearance; ``None`` is the server loop row).
    copy_width:
        Drawn width (ms) of a *copy data to user* phase. Default: 0.6 % of the time range.
    legend:
        Add a legend of the kinds of marks present.
    ready:
        ``{conn: [t, ...]}``: when data became available to that connection
        (``time.monotonic()`` seconds), e.g. the times the peer sent to it (its ``SEND``
        events for that connection only). Each read that returns data is matched with the
        first of these times after the previous read's data; the wait ends there, the copy
        starts there or at the ``recv()`` call, if later (the time between is *data waiting
        to be read*), never before. A time recorded just after the read returned (the
        sender's thread logs its send once ``send()`` has returned, and may log it after the
        reader woke up) counts as the return, provided the connection has no other event in
        between. A read with no such time is drawn as without ``ready``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    evs = sorted(events.events() if isinstance(events, EventLog) else events, key=lambda e: e.t)
    labels = dict(labels or {})
    if lanes is None:
        lanes = list(dict.fromkeys(e.conn for e in evs if _drawn(e)))
    else:
        lanes = list(lanes)
        evs = [e for e in evs if e.conn in lanes]
    evs = [e for e in evs if _drawn(e)]
    layout = _Lanes(lanes, labels)

    if ax is None:
        width = plt.rcParams["figure.figsize"][0]
        fig, ax = plt.subplots(
            figsize=(width, 1.3 + 0.42 * max(2, len(layout.rows))), layout="constrained"
        )
    fig = ax.figure

    start = t0 if t0 is not None else (evs[0].t if evs else 0.0)
    times_ms = [(e.t - start) * 1000.0 for e in evs]
    span_ms = (max(times_ms) - min(times_ms)) if evs else 1.0
    width = copy_width if copy_width is not None else max(span_ms, 1e-3) * 0.006

    ready_ms = {
        conn: sorted((t - start) * 1000.0 for t in times) for conn, times in (ready or {}).items()
    }
    spans, ticks, marks = _collect(evs, times_ms, layout, width, ready_ms)

    for name, bars in spans.items():
        gid, _, color = SPANS[name]
        verts = [
            [(x, y - _BAR / 2), (x + w, y - _BAR / 2), (x + w, y + _BAR / 2), (x, y + _BAR / 2)]
            for x, w, y in bars
        ]
        artist = PolyCollection(
            verts,
            facecolors=color,
            edgecolors="#08306b" if name == "copy" else "none",
            linewidths=0.4,
            zorder=1,
        )
        artist.set_gid(gid)
        ax.add_collection(artist)
    for kind, points in ticks.items():
        gid, _, color = TICKS[kind]
        xs = [x for x, _ in points]
        artist = ax.vlines(
            xs,
            [y - _TICK for _, y in points],
            [y + _TICK for _, y in points],
            colors=color,
            linewidths=0.8,
            zorder=2,
        )
        artist.set_gid(gid)
    for kind, points in marks.items():
        gid, _, marker, color = MARKS[kind]
        dy = _MARK_OFFSETS.get(kind, 0.0)
        artist = ax.scatter(
            [x for x, _ in points],
            [y + dy for _, y in points],
            marker=marker,
            s=26,
            color=color,
            zorder=3,
            linewidths=0,
        )
        artist.set_gid(gid)

    ax.set_yticks(range(len(layout.rows)), layout.rows)
    ax.set_ylim(len(layout.rows) - 0.4, -0.6)  # first lane on top
    ax.grid(False, axis="y")
    for boundary in range(1, len(layout.rows)):
        if layout.rows[boundary].endswith("application") or layout.rows[boundary] == SERVER_LOOP:
            ax.axhline(boundary - 0.5, color="#bdbdbd", linewidth=0.6, zorder=0)
    starts = [x for bars in spans.values() for x, _, _ in bars]  # a ready time may be earlier
    lo = min(times_ms + starts + [0.0])
    hi = max(times_ms + [0.0]) + width
    pad = max(hi - lo, 1e-3) * 0.02
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_xlabel("time (ms)")
    if title:
        ax.set_title(title)
    if legend and (spans or ticks or marks):
        ax.legend(
            handles=_legend_handles(spans, ticks, marks),
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0.0,
        )
    return fig


def _drawn(event: Event) -> bool:
    return event.kind in MARKS or event.kind in TICKS


def _next_times(evs, times_ms) -> list[float]:
    """For each event, the time of the next event of the same connection (inf: none)."""
    following = [math.inf] * len(evs)
    later: dict = {}
    for i in range(len(evs) - 1, -1, -1):
        following[i] = later.get(evs[i].conn, math.inf)
        later[evs[i].conn] = times_ms[i]
    return following


def _match_ready(times: list, after: float, t: float, until: float):
    """Match a read that returned data at ``t`` with a time of ``times`` (sorted, ms).

    Returns ``(ready, consumed)``: when its data became available (at most ``t``) and the
    bound after which the next read's data must come, or ``(None, None)`` without a match.
    The candidate is the first time after ``after``; one later than ``t`` still counts (as
    ``t``) if it is before ``until``, the connection's next event: its sender recorded it a
    moment after the reader woke up.
    """
    i = bisect.bisect_right(times, after)
    if i == len(times) or (times[i] > t and times[i] >= until):
        return None, None
    return min(times[i], t), max(times[i], t)


def _collect(evs, times_ms, layout: _Lanes, width: float, ready_ms: dict | None = None):
    """Walk the events once; return {span: [(x, w, y)]}, {kind: [(x, y)]} x 2 (ticks, marks)."""
    spans: dict[str, list] = collections.defaultdict(list)
    ticks: dict[str, list] = collections.defaultdict(list)
    marks: dict[str, list] = collections.defaultdict(list)
    call_at: dict = {}  # conn -> time of the traced recv() call still in progress
    wait_from: dict = {}  # conn -> when the kernel started waiting for data
    last_at: dict = {}  # conn -> time of the previous event of that connection
    consumed: dict = {}  # conn -> ready times up to this one belong to earlier reads
    following = _next_times(evs, times_ms) if ready_ms else []

    for index, (e, t) in enumerate(zip(evs, times_ms)):
        conn = e.conn
        y_app = layout.app[conn]
        if e.kind in TICKS:
            ticks[e.kind].append((t, y_app))
            if e.kind == kinds.WOULD_BLOCK:
                wait_from.setdefault(conn, call_at.get(conn, t))
                call_at.pop(conn, None)
        elif e.kind == kinds.RECV_CALL:
            marks[kinds.RECV_CALL].append((t, y_app))
            call_at[conn] = t
            wait_from.setdefault(conn, t)
        elif e.kind in (kinds.RECV, kinds.EOF) or (
            e.kind == kinds.ERROR and conn is not None and conn in call_at
        ):
            marks[e.kind].append((t, y_app))
            called = call_at.pop(conn, None)
            # An untraced (server-side) read: the kernel waited since this connection's
            # previous event (the accept, the last send...).
            begin = wait_from.pop(conn, called if called is not None else last_at.get(conn, t))
            copy = width if e.kind == kinds.RECV else 0.0
            ready = None
            if copy and ready_ms and conn in ready_ms:
                ready, upto = _match_ready(
                    ready_ms[conn], consumed.get(conn, -math.inf), t, following[index]
                )
                consumed[conn] = upto if upto is not None else t
            if conn in layout.kernel:
                y_kernel = layout.kernel[conn]
                if ready is None:  # no better clue: the copy ends when recv() returned
                    if t - copy > begin:
                        spans["wait"].append((begin, t - copy - begin, y_kernel))
                    if copy:
                        spans["copy"].append((t - copy, copy, y_kernel))
                else:  # the data existed from `ready` on: never copy before
                    # An untraced read was called at `begin` at the earliest.
                    read_from = max(ready, called if called is not None else begin)
                    if ready > begin:
                        spans["wait"].append((begin, ready - begin, y_kernel))
                    if read_from > ready:
                        spans["buffered"].append((ready, read_from - ready, y_kernel))
                    spans["copy"].append((read_from, max(t - read_from, copy), y_kernel))
            if called is not None:
                if ready is None:
                    left = min(called, t - copy)
                    spans["blocked"].append((left, t - left, y_app))
                else:  # true start; a minimum width, if any, goes right
                    spans["blocked"].append((called, max(t - called, copy), y_app))
        else:
            marks[e.kind].append((t, y_app))
        last_at[conn] = t
    return spans, ticks, marks


def _legend_handles(spans, ticks, marks):
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Artist] = []
    for name in SPANS:
        if name in spans:
            _, label, color = SPANS[name]
            handles.append(Patch(facecolor=color, label=label))
    for kind in MARKS:
        if kind in marks:
            _, label, marker, color = MARKS[kind]
            handles.append(
                Line2D([], [], linestyle="none", marker=marker, color=color, label=label)
            )
    for kind in TICKS:
        if kind in ticks:
            _, label, color = TICKS[kind]
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="|",
                    markersize=10,
                    color=color,
                    label=f"{label} (x{len(ticks[kind])})",
                )
            )
    return handles


# Room for more plots of measurements (CPU-vs-latency trade-off, scaling curves) below.

__all__ = ["GIDS", "plot_timeline"]
