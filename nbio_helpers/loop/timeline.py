"""The picture of a loop at work, drawn from its :class:`~.record.LoopLog`.

Usage (in a cell tagged ``nbval-ignore-output``)::

    fig = plot_loop_timeline(server.events, title="our loop, 3 clients")
    plt.show()

Rows, top to bottom:

* **select()**: a bar for each call, from the moment it was called to the moment it returned:
  the loop asleep in the kernel (the *idle gap*). Where it was given a timeout that it did not
  use up, a thin line goes on to where the timeout would have ended: it woke early, because a
  socket was ready (▲, with how many when there are few calls) rather than because a timer was
  due (✕: it returned with nothing ready, its timeout spent). The row's label says how many
  sockets it watched.
* one row per task (``conn 3``, ``accept``...), in the order they first ran: a bar each time
  the task ran. Between its bars, the task was suspended, waiting.

Every artist is one collection per kind and carries a ``gid`` (see :data:`GIDS`). Time is in
milliseconds from ``t0`` (default: the first record). :func:`select_rows` gives the same
``select()`` calls as plain rows, for a printed table.
"""
from __future__ import annotations

from .record import LoopLog, SelectCall, TaskRun

GIDS = {
    "asleep": "nbio-loop-asleep",       # select() sleeping
    "unused": "nbio-loop-timeout",      # the rest of a timeout it did not need
    "ready": "nbio-loop-ready",         # it returned sockets
    "expired": "nbio-loop-expired",     # it returned nothing: the timeout was spent
    "run": "nbio-task-run",             # a task running
}
"""What each artist is -> its ``gid``."""

SELECT_ROW = "select()"
_BAR = 0.55


def select_rows(log: LoopLog | list[SelectCall], limit: int | None = None,
                t0: float | None = None) -> list[dict]:
    """The ``select()`` calls as rows of plain numbers (milliseconds from ``t0``)::

        [{'at_ms': 0.0, 'watched': 3, 'timeout_ms': None, 'asleep_ms': 12.5, 'ready': 1}, ...]
    """
    calls = log.selects() if isinstance(log, LoopLog) else list(log)
    start = t0 if t0 is not None else (calls[0].start if calls else 0.0)
    rows = [{"at_ms": (c.start - start) * 1e3, "watched": c.watched,
             "timeout_ms": None if c.timeout is None else c.timeout * 1e3,
             "asleep_ms": c.idle * 1e3, "ready": c.ready} for c in calls]
    return rows[:limit] if limit is not None else rows


def plot_loop_timeline(log: LoopLog, *, selects: list[SelectCall] | None = None,
                       runs: list[TaskRun] | None = None, t0: float | None = None,
                       lanes: list[str] | None = None, max_lanes: int = 12,
                       min_width: float | None = None, title: str | None = None, ax=None,
                       legend: bool = True):
    """Draw the loop's ``select()`` calls and its tasks' runs; return the Figure.

    Parameters
    ----------
    log:
        The loop's :class:`~.record.LoopLog` (a loop server's ``events``); ``selects`` and
        ``runs`` override what is taken from it (e.g. a window of it).
    t0:
        The ``time.monotonic()`` shown as 0 ms (default: the first record).
    lanes:
        Which task lanes to draw, top to bottom (default: in the order they first ran, at
        most ``max_lanes``; the title says how many were left out).
    min_width:
        Smallest drawn width of a bar, in ms (a task step lasts microseconds): default 0.3 %
        of the time range. Widths below it are not to scale.
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    selects = log.selects() if selects is None else list(selects)
    runs = log.runs() if runs is None else list(runs)
    all_lanes = list(dict.fromkeys(r.lane for r in runs))
    shown = list(lanes) if lanes is not None else all_lanes[:max_lanes]
    left_out = len([lane for lane in all_lanes if lane not in shown])
    rows = [SELECT_ROW, *shown]
    y_of = {lane: i + 1 for i, lane in enumerate(shown)}

    times = [c.start for c in selects] + [r.start for r in runs]
    ends = [c.end for c in selects] + [r.end for r in runs]
    start = t0 if t0 is not None else min(times, default=0.0)
    ms = lambda t: (t - start) * 1e3                                    # noqa: E731
    span = (max(ends, default=start) - start) * 1e3 or 1.0
    width = min_width if min_width is not None else span * 0.003

    if ax is None:
        fig, ax = plt.subplots(figsize=(plt.rcParams["figure.figsize"][0],
                                        1.4 + 0.38 * max(3, len(rows))), layout="constrained")
    fig = ax.figure

    def bars(spans, y, color, gid):
        verts = [[(x, y - _BAR / 2), (x + w, y - _BAR / 2), (x + w, y + _BAR / 2),
                  (x, y + _BAR / 2)] for x, w in spans]
        artist = PolyCollection(verts, facecolors=color, edgecolors="none", zorder=2)
        artist.set_gid(gid)
        ax.add_collection(artist)
        return artist

    bars([(ms(c.start), max(width, c.idle * 1e3)) for c in selects], 0, "#9ecae1",
         GIDS["asleep"])
    unused = [(ms(c.end), ms(c.start + c.timeout)) for c in selects
              if c.timeout is not None and c.start + c.timeout > c.end + 1e-4]
    if unused:
        artist = ax.hlines([0] * len(unused), [a for a, _ in unused], [b for _, b in unused],
                           colors="#6baed6", linewidths=0.8, linestyles="dotted", zorder=1)
        artist.set_gid(GIDS["unused"])
    woke = [c for c in selects if c.ready]
    spent = [c for c in selects if not c.ready and c.timeout is not None]
    for calls, marker, color, key in ((woke, "^", "#2ca02c", "ready"),
                                      (spent, "x", "#ff7f0e", "expired")):
        if calls:
            artist = ax.scatter([ms(c.end) for c in calls], [-0.42] * len(calls), marker=marker,
                                s=22, color=color, zorder=3, linewidths=1.2)
            artist.set_gid(GIDS[key])
    if 0 < len(woke) <= 30:
        for c in woke:
            ax.annotate(str(c.ready), (ms(c.end), -0.42), textcoords="offset points",
                        xytext=(3, 2), fontsize=7, color="#2ca02c")
    by_lane = {}
    for r in runs:
        if r.lane in y_of:
            by_lane.setdefault(r.lane, []).append((ms(r.start), max(width, (r.end - r.start) * 1e3)))
    palette = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["#1f77b4"])
    run_artists = [bars(spans, y_of[lane], palette[i % len(palette)], GIDS["run"])
                   for i, (lane, spans) in enumerate(by_lane.items())]

    watched = [c.watched for c in selects]
    label = SELECT_ROW
    if watched:
        lo, hi = min(watched), max(watched)
        label += f"\nwatching {lo}" + (f"–{hi}" if hi != lo else "")
    ax.set_yticks(range(len(rows)), [label, *shown])
    ax.set_ylim(len(rows) - 0.4, -0.8)
    ax.grid(False, axis="y")
    ax.axhline(0.5, color="#bdbdbd", linewidth=0.6, zorder=0)
    ax.set_xlim(-span * 0.01, span * 1.02 + width)
    ax.set_xlabel("time (ms)")
    if title or left_out:
        ax.set_title((title or "") + (f" ({left_out} more task lanes not shown)" if left_out
                                      else ""))
    if legend and (selects or runs):
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
        handles = [Patch(facecolor="#9ecae1", label="asleep in select()")]
        if unused:
            handles.append(Line2D([], [], color="#6baed6", linestyle="dotted",
                                  label="timeout not used up"))
        if woke:
            handles.append(Line2D([], [], linestyle="none", marker="^", color="#2ca02c",
                                  label="woke: sockets ready"))
        if spent:
            handles.append(Line2D([], [], linestyle="none", marker="x", color="#ff7f0e",
                                  label="woke: timeout spent"))
        if run_artists:
            handles.append(Patch(facecolor=palette[0], label="a task runs"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0.0)
    return fig


__all__ = ["GIDS", "plot_loop_timeline", "select_rows"]
