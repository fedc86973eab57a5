"""The picture of a loop at work, drawn from its :class:`~.record.LoopLog`.

Usage (in a cell tagged ``nbval-ignore-output``)::

    fig = plot_loop_timeline(server.events, title="our loop, 3 clients")
    plt.show()

Rows, top to bottom:

* **select()**: a bar for each call, from the moment it was called to the moment it returned:
  the loop asleep in the kernel (the *idle gap*), labelled "60 of 192 ms" (asleep, of the
  timeout it was given) where there is room. A call given ``timeout=0`` (callbacks were ready:
  it only looked) is a grey tick. Below the bars, a line goes on from where a call returned to
  where its timeout would have ended, its *deadline* (a tick): the earliest timer's. Above
  them, why it returned: ▲ sockets were ready (with how many, when there are few calls), ✕ it
  returned with nothing ready, its timeout spent (a timer was due). The row's label says how
  many sockets it watched. Faint dotted lines go down from each wake-up to the tasks that ran.
* one row per task (``conn 3``, ``accept``...), in the order they first ran: a bar each time
  the task ran. Between its bars, the task was suspended, waiting.

Every artist is one collection per kind and carries a ``gid`` (see :data:`GIDS`). Time is in
milliseconds from ``t0`` (default: the first record). :func:`select_rows` gives the same
``select()`` calls as plain rows, for a printed table.
"""

from __future__ import annotations

from nbio_helpers.loop.record import LoopLog, SelectCall, TaskRun

GIDS = {
    "asleep": "nbio-loop-asleep",  # select() sleeping
    "nosleep": "nbio-loop-nosleep",  # select(0): callbacks were ready, it only looked
    "unused": "nbio-loop-timeout",  # the rest of a timeout it did not need
    "deadline": "nbio-loop-deadline",  # where that timeout would have ended
    "ready": "nbio-loop-ready",  # it returned sockets
    "expired": "nbio-loop-expired",  # it returned nothing: the timeout was spent
    "run": "nbio-task-run",  # a task running
}
"""What each artist is -> its ``gid``."""

SELECT_ROW = "select()"
_BAR = 0.5
_LANE0 = 1.6  # y of the first task lane (the select row is at 0)
_TIMEOUT_Y = 0.48  # the line of the timeouts, below the select() bars
_ASLEEP = ("#9ecae1", "#c6dbef")  # alternating, so that calls side by side stand apart
_TIMEOUT = "#3182bd"
_READY, _EXPIRED, _NOSLEEP = "#2ca02c", "#e6550d", "#636363"
# The select() row's ticks: a select(0) call (no sleep), and where a timeout would have ended.
_NOSLEEP_TICK = {"marker": "|", "s": 90, "color": _NOSLEEP, "linewidths": 1.0, "zorder": 3}
_DEADLINE_TICK = {"marker": "|", "s": 70, "color": _TIMEOUT, "linewidths": 1.2, "zorder": 2}


def select_rows(
    log: LoopLog | list[SelectCall], limit: int | None = None, t0: float | None = None
) -> list[dict]:
    """The ``select()`` calls as rows of plain numbers (milliseconds from ``t0``)::

    [{'at_ms': 0.0, 'watched': 3, 'timeout_ms': None, 'asleep_ms': 12.5, 'ready': 1}, ...]
    """
    calls = log.selects() if isinstance(log, LoopLog) else list(log)
    start = t0 if t0 is not None else (calls[0].start if calls else 0.0)
    rows = [
        {
            "at_ms": (c.start - start) * 1e3,
            "watched": c.watched,
            "timeout_ms": None if c.timeout is None else c.timeout * 1e3,
            "asleep_ms": c.idle * 1e3,
            "ready": c.ready,
        }
        for c in calls
    ]
    return rows[:limit] if limit is not None else rows


def plot_loop_timeline(
    log: LoopLog,
    *,
    selects: list[SelectCall] | None = None,
    runs: list[TaskRun] | None = None,
    t0: float | None = None,
    lanes: list[str] | None = None,
    max_lanes: int = 12,
    min_width: float | None = None,
    title: str | None = None,
    ax=None,
    legend: bool = True,
    labels: dict | None = None,
):
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
        Smallest drawn width of a bar, in ms (a task step lasts microseconds): default 0.5 %
        of the time range. Widths below it are not to scale.
    labels:
        Lane name -> the label shown for it (``{"conn 1": "conn 1 (ann)"}``).
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    selects = log.selects() if selects is None else list(selects)
    runs = log.runs() if runs is None else list(runs)
    all_lanes = list(dict.fromkeys(r.lane for r in runs))
    shown = list(lanes) if lanes is not None else all_lanes[:max_lanes]
    left_out = len([lane for lane in all_lanes if lane not in shown])
    y_of = {lane: _LANE0 + i for i, lane in enumerate(shown)}

    times = [c.start for c in selects] + [r.start for r in runs]
    ends = [c.end for c in selects] + [r.end for r in runs]
    start = t0 if t0 is not None else min(times, default=0.0)
    ms = lambda t: (t - start) * 1e3  # noqa: E731
    span = (max(ends, default=start) - start) * 1e3 or 1.0
    width = min_width if min_width is not None else span * 0.005

    if ax is None:
        fig, ax = plt.subplots(
            figsize=(plt.rcParams["figure.figsize"][0], 1.9 + 0.42 * max(2, len(shown))),
            layout="constrained",
        )
    fig = ax.figure

    def bars(spans, y, colors, gid, height=_BAR):
        verts = [
            [
                (x, y - height / 2),
                (x + w, y - height / 2),
                (x + w, y + height / 2),
                (x, y + height / 2),
            ]
            for x, w in spans
        ]
        artist = PolyCollection(
            verts, facecolors=colors, edgecolors="white", linewidths=0.6, zorder=2
        )
        artist.set_gid(gid)
        ax.add_collection(artist)
        return artist

    def marks(xs, y, gid, **style):
        """A marker at each of ``xs`` on the row at ``y``, the whole set tagged ``gid``."""
        artist = ax.scatter(xs, [y] * len(xs), **style)
        artist.set_gid(gid)
        return artist

    # The select() row: asleep (a bar per call), or only looking (select(0): a tick).
    slept = [c for c in selects if c.timeout != 0]
    looked = [c for c in selects if c.timeout == 0]
    bars(
        [(ms(c.start), max(width, c.idle * 1e3)) for c in slept],
        0,
        [_ASLEEP[i % 2] for i in range(len(slept))],
        GIDS["asleep"],
    )
    for c in slept:  # the idle gap, and the timeout, where there is room
        room = c.idle * 1e3 / span
        if room > 0.035:
            text = f"{c.idle * 1e3:.0f}"
            if room > 0.11:
                text += " ms, no timeout" if c.timeout is None else f" of {c.timeout * 1e3:.0f} ms"
            ax.text(
                ms(c.start) + c.idle * 5e2,
                0,
                text,
                ha="center",
                va="center",
                fontsize=7.5,
                color="#08306b",
                zorder=3,
                clip_on=True,
            )
    if looked:
        marks([ms(c.start) for c in looked], 0, GIDS["nosleep"], **_NOSLEEP_TICK)
    # What each finite timeout allowed beyond the moment the call returned: a line on to
    # where it would have ended (its deadline: the earliest timer's).
    unused = [
        (ms(c.end), ms(c.start + c.timeout))
        for c in slept
        if c.timeout is not None and c.start + c.timeout > c.end + 1e-4
    ]
    if unused:
        artist = ax.hlines(
            [_TIMEOUT_Y] * len(unused),
            [a for a, _ in unused],
            [b for _, b in unused],
            colors=_TIMEOUT,
            linewidths=1.0,
            zorder=1,
        )
        artist.set_gid(GIDS["unused"])
    deadlines = [ms(c.start + c.timeout) for c in slept if c.timeout is not None]
    if deadlines:
        marks(deadlines, _TIMEOUT_Y, GIDS["deadline"], **_DEADLINE_TICK)
    woke = [c for c in selects if c.ready]
    spent = [c for c in slept if not c.ready and c.timeout is not None]
    for calls, marker, color, key in (
        (woke, "^", _READY, "ready"),
        (spent, "x", _EXPIRED, "expired"),
    ):
        if calls:
            marks(
                [ms(c.end) for c in calls],
                -0.5,
                GIDS[key],
                marker=marker,
                s=26,
                color=color,
                zorder=3,
                linewidths=1.4,
            )
    if 0 < len(woke) + len(spent) <= 40:  # why it woke, down to the tasks that then ran
        ax.vlines(
            [ms(c.end) for c in (*woke, *spent)],
            -0.5,
            _LANE0 + len(shown) - 0.5,
            colors="#d9d9d9",
            linewidths=0.6,
            linestyles="dotted",
            zorder=0,
        )
    if 0 < len(woke) <= 30:
        for c in woke:
            ax.annotate(
                str(c.ready),
                (ms(c.end), -0.5),
                textcoords="offset points",
                xytext=(4, 1),
                fontsize=7,
                color=_READY,
                va="center",
            )

    # One lane per task: a bar each time it ran.
    by_lane: dict[str, list[tuple[float, float]]] = {}
    for r in runs:
        if r.lane in y_of:
            by_lane.setdefault(r.lane, []).append(
                (ms(r.start), max(width, (r.end - r.start) * 1e3))
            )
    palette = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["#1f77b4"])
    run_artists = [
        bars(spans, y_of[lane], palette[(i + 1) % len(palette)], GIDS["run"], height=0.55)
        for i, (lane, spans) in enumerate(by_lane.items())
    ]

    watched = [c.watched for c in selects]
    label = SELECT_ROW
    if watched:
        lo, hi = min(watched), max(watched)
        label += f"\nwatching {lo}" + (f"–{hi}" if hi != lo else "")
    labels = labels or {}
    ax.set_yticks([0, *y_of.values()], [label, *(labels.get(lane, lane) for lane in shown)])
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(_LANE0 + len(shown) - 0.5, -0.95)
    ax.grid(False, axis="y")
    ax.axhline(0.92, color="#bdbdbd", linewidth=0.6, zorder=0)
    ax.set_xlim(-span * 0.01, span * 1.02 + width)
    xlabel = "time (ms)"
    if selects:
        asleep = sum(c.idle for c in selects) * 1e3
        xlabel += (
            f" · {len(selects)} select() calls, asleep {asleep:.0f} of "
            f"{span:.0f} ms ({asleep / span:.0%})"
        )
    ax.set_xlabel(xlabel)
    if title or left_out:
        ax.set_title(
            (title or "") + (f" ({left_out} more task lanes not shown)" if left_out else "")
        )
    if legend and (selects or runs):
        from matplotlib.artist import Artist
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        handles: list[Artist] = []
        if slept:
            handles.append(Patch(facecolor=_ASLEEP[0], label="asleep in select()"))
        if looked:
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="|",
                    markersize=9,
                    color=_NOSLEEP,
                    label="select(0): callbacks ready",
                )
            )
        if unused:
            handles.append(
                Line2D(
                    [],
                    [],
                    color=_TIMEOUT,
                    marker="|",
                    markevery=[1],
                    markersize=8,
                    label="timeout not used up,\non to its deadline",
                )
            )
        if woke:
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="^",
                    color=_READY,
                    label="woke: N sockets ready",
                )
            )
        if spent:
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="x",
                    color=_EXPIRED,
                    label="woke: timeout spent\n(a timer is due)",
                )
            )
        if run_artists:
            handles.append(
                Patch(facecolor=palette[1 % len(palette)], label="a task runs\n(a colour per task)")
            )
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0.0,
            labelspacing=0.8,
        )
    return fig


__all__ = ["GIDS", "plot_loop_timeline", "select_rows"]
