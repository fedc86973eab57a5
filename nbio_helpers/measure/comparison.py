"""Every model under the same load: the one comparison (notebooks 03-05 and the bench).

::

    rows = compare()                       # every model of MODELS, polling busy and sleeping
    print(comparison_table(rows))
    plot_comparison(rows)                  # dots with whiskers (range of trials), log axes

    compare(["select", ("polling", {"interval": 0.001})], parts=("idle", "latency"))

Each model runs in a background thread of this process, one after another; every client
runs in the client process (:mod:`.process`). The parts, in this order:

* ``"idle"``: CPU share and loop wake-ups per second with silent clients connected
  (:func:`~.idle.idle_cost`, ``idle_repeat`` windows);
* ``"latency"``: sequential requests, ``trials`` series, paced for the model's sleep
  (:func:`~.latency.latency_stats`);
* ``"load"``: throughput and the server's CPU under ``load_clients`` concurrent clients,
  ``load_trials`` runs (:func:`~.latency.throughput`);
* ``"connections"``: how many of ``connections`` concurrent connections get their echo at
  the same time (skipped when ``connections`` is 0).

The model list comes from :data:`nbio_helpers.models.MODELS` (a model added there joins by
itself), with the polling model twice: busy, and sleeping 10 ms (:data:`VARIANTS`).
"""

from __future__ import annotations

import dataclasses
import math

from nbio_helpers.limits import raise_fd_limit
from nbio_helpers.measure.echo import EchoLoad
from nbio_helpers.measure.idle import idle_clients as _silent_clients
from nbio_helpers.measure.idle import idle_cost_held
from nbio_helpers.measure.latency import latency_stats, throughput
from nbio_helpers.measure.process import client_process
from nbio_helpers.measure.stats import Spread
from nbio_helpers.measure.sweep import spacing_for

__all__ = [
    "PARTS",
    "VARIANTS",
    "ComparisonRow",
    "compare",
    "comparison_models",
    "comparison_table",
    "model_spec",
    "plot_comparison",
]

PARTS = ("idle", "latency", "load", "connections")
"""What :func:`compare` can measure, in the order it measures it."""

VARIANTS = {
    "polling": (("polling (busy)", {"interval": 0}), ("polling (10 ms sleep)", {"interval": 0.01})),
}
"""Models compared in several settings: model name -> ``(label, options)`` pairs."""


def comparison_models(models=None) -> list[tuple[str, str, dict]]:
    """``(label, model, options)`` for every model of ``models`` (default: ``MODELS``),
    in teaching order, each model of :data:`VARIANTS` once per variant."""
    if models is None:
        from nbio_helpers.models import MODELS  # at call time: a model registered later joins too

        models = list(MODELS)
    specs = []
    for name in models:
        for label, options in VARIANTS.get(name, ((name, {}),)):
            specs.append((label, name, dict(options)))
    return specs


def model_spec(spec) -> tuple[str, str | type, dict]:
    """Normalise a model spec to ``(label, model name or Server class, options)``."""
    if isinstance(spec, (str, type)):
        spec = (spec, {})
    if len(spec) == 2:
        model, options = spec
        name = model if isinstance(model, str) else getattr(model, "model", model.__name__)
        extra = " ".join(f"{k}={v}" for k, v in options.items())
        return (f"{name} {extra}".strip(), model, dict(options))
    label, model, options = spec
    return label, model, dict(options)


@dataclasses.dataclass
class ComparisonRow:
    """One model's figures in :func:`compare`. CPU in cores (1.0 = one core), times in s.

    Each ``*_range`` is the ``(lowest, highest)`` of the repeated trials around the pooled
    figure; a part that was not measured is ``nan`` (``max_connections`` and ``tried``: 0).
    """

    label: str
    model: str
    options: dict
    idle_cpu: float = math.nan  # silent clients connected
    idle_cpu_range: tuple = (math.nan, math.nan)
    idle_wakeups: float = math.nan  # loop rounds (or wake-ups) per second meanwhile
    idle_clients: int = 0  # silent clients the server accepted
    median_latency: float = math.nan  # one client, sequential requests
    median_range: tuple = (math.nan, math.nan)
    tail_latency: float = math.nan  # the slow end under its true name:
    tail_name: str = "max"  # "p90" with 100+ requests (nbio_helpers.measure.stats)
    latency_samples: int = 0
    throughput: float = math.nan  # messages per second under the concurrent load
    throughput_range: tuple = (math.nan, math.nan)
    loaded_cpu: float = math.nan  # the server's CPU share during the load
    loaded_cpu_range: tuple = (math.nan, math.nan)
    load_ok: bool = True  # every echo of the load came back intact
    max_connections: int = 0  # connections echoed at the same time...
    tried: int = 0  # ...of this many opened

    def as_dict(self) -> dict:
        """Plain values (for JSON, pandas, or a table of your own)."""
        return dataclasses.asdict(self)


def _range(spread: Spread | None) -> tuple:
    """``(low, high)`` of a spread; NaNs when there is none (as a row's default)."""
    if spread is None:
        return (math.nan, math.nan)
    return (spread.low, spread.high)


def compare(
    models=None,
    *,
    parts=PARTS,
    idle_clients: int = 20,
    idle_seconds: float = 0.05,
    idle_repeat: int = 3,
    requests: int = 34,
    trials: int = 3,
    size: int = 64,
    load_clients: int = 20,
    load_seconds: float = 0.06,
    load_trials: int = 3,
    warmup: float = 0.02,
    connections: int = 0,
    timeout: float = 5.0,
    process=None,
) -> list[ComparisonRow]:
    """Measure each model under the same load, one after another; one row per model.

    Parameters
    ----------
    models:
        Default: :func:`comparison_models` (every model, polling busy and sleeping). Each
        item is a model name (``"select"``), ``(model, options)`` (label made from them,
        e.g. ``"polling interval=0.01"``), or ``(label, model, options)``; ``model`` is a
        name in ``MODELS`` or a Server class.
    parts:
        Which of :data:`PARTS` to measure (the others stay ``nan``).
    idle_clients, idle_seconds, idle_repeat:
        Silent clients, and the length and number of idle CPU windows.
    requests, trials:
        Sequential requests per trial, and trials, for the latency: 3 x 34 gives 102
        samples, enough to name a p90 (:mod:`nbio_helpers.measure.stats`). The pauses between
        requests span a model's ``interval`` option, so sleeping pollers are caught at every
        phase.
    size:
        Bytes per request and per load message.
    load_clients, load_seconds, load_trials, warmup:
        Concurrent clients, measured seconds (after ``warmup``) and runs of the load: the
        :class:`~.echo.EchoLoad` ``(load_clients, size, warmup, load_seconds)``, run
        ``load_trials`` times by :func:`~.latency.throughput`.
    connections:
        Concurrent connections to try (``"connections"`` part; 0 = skip it).
    timeout:
        Bound on each latency measurement and each connection probe, and on each load
        client's connect, in seconds.
    process:
        The :class:`~.process.ClientProcess` to measure from (default: the shared one).

    Returns
    -------
    list of :class:`ComparisonRow`, in the order given. Every server is stopped before
    returning. With the defaults and the seven models, about 4 s (the 10 ms sleeper's
    latency alone is 1 s: 102 requests of about 10 ms); ``connections=1050`` adds about 2 s.
    """
    from nbio_helpers.models import MODELS

    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown part(s) {sorted(unknown)}; choose from {PARTS}")
    # The load's parameters are checked now, before any server starts.
    load = EchoLoad(
        clients=load_clients,
        size=size,
        warmup=warmup,
        seconds=load_seconds,
        connect_timeout=timeout,
    )
    process = process or client_process()
    specs = [model_spec(s) for s in (comparison_models() if models is None else models)]
    probe = connections if "connections" in parts else 0
    if probe:
        raise_fd_limit(probe + 300)
    rows = []
    for label, model, options in specs:
        cls = MODELS[model] if isinstance(model, str) else model
        row = ComparisonRow(label, getattr(cls, "model", str(model)), options)
        # A backlog for every client at once: a slow accept() must not fail a connect().
        with cls(
            name=f"compare-{label}", record_events=False, backlog=max(1024, probe + 100), **options
        ) as server:
            if "idle" in parts:
                with _silent_clients(server, idle_clients, process=process) as held:
                    idle = idle_cost_held(server, held, idle_seconds, repeat=idle_repeat)
                row.idle_cpu, row.idle_cpu_range = idle.cpu, _range(idle.spread)
                row.idle_wakeups, row.idle_clients = idle.wakeups_per_second, idle.clients
            if "latency" in parts:
                lat = latency_stats(
                    server,
                    requests,
                    size,
                    timeout,
                    spacing_for(options.get("interval", 0.0)),
                    trials=trials,
                    process=process,
                )
                row.median_latency, row.median_range = lat.median, _range(lat.spread)
                row.tail_latency, row.tail_name = lat.tail, lat.tail_name
                row.latency_samples = lat.count
            if "load" in parts:
                run = throughput(server, load, trials=load_trials, process=process)
                row.throughput, row.throughput_range = run.messages_per_second, _range(run.spread)
                row.loaded_cpu, row.loaded_cpu_range = run.cpu, _range(run.cpu_spread)
                row.load_ok = run.ok
            if probe:
                with process.held(
                    server.address,
                    probe,
                    timeout=timeout + 60,
                    check=True,
                    within=timeout,
                    connect_timeout=1.0,
                    reply_within=timeout,
                    stall=0.5,
                ) as held:
                    row.max_connections, row.tried = held["echoed_ok"], held["opened"]
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- table
def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None or value != value else format(value, spec)


def _share(value) -> str:
    """A CPU share as a readable percentage of a core."""
    if value != value:
        return "-"
    if value >= 0.095:
        return f"{value:.0%}"
    if value >= 0.001:
        return f"{value:.1%}"
    return "<0.1%"


def _ms(seconds) -> str:
    return "-" if seconds != seconds else f"{seconds * 1e3:.3g} ms"


COLUMN_GAP = "  "
"""Between two columns of :func:`comparison_table`: no two figures ever touch."""


def comparison_table(rows: list[ComparisonRow]) -> str:
    """:func:`compare`'s rows as a fixed-width text table (ranges of the trials in
    brackets; ``-`` where a part was not measured).

    Each column is as wide as its widest cell, and two spaces apart from the next, so that
    no figure runs into its neighbour (``1.55 ms  156,357 (150,000-160,000)``).
    """
    names = {r.tail_name for r in rows if r.tail_latency == r.tail_latency}
    tail_head = names.pop() if len(names) == 1 else "tail"
    header = [
        "model",
        "idle CPU",
        "wake-ups/s",
        "loaded CPU",
        "median latency",
        tail_head,
        "msg/s",
        "connections",
    ]
    body = []
    for r in rows:
        median = _ms(r.median_latency)
        if r.median_latency == r.median_latency:
            lo, hi = r.median_range
            median += f" ({lo * 1e3:.3g}-{hi * 1e3:.3g})"
        tput = _fmt(r.throughput, ",.0f")
        if r.throughput == r.throughput:
            lo, hi = r.throughput_range
            tput += f" ({lo:,.0f}-{hi:,.0f})"
        tail_cell = _ms(r.tail_latency)
        if tail_head == "tail" and r.tail_latency == r.tail_latency:
            tail_cell = f"{r.tail_name} {tail_cell}"
        conns = f"{r.max_connections}/{r.tried}" if r.tried else "-"
        body.append(
            [
                r.label,
                _share(r.idle_cpu),
                _fmt(r.idle_wakeups, ",.0f"),
                _share(r.loaded_cpu),
                median,
                tail_cell,
                tput,
                conns,
            ]
        )
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells) -> str:
        first = cells[0].ljust(widths[0])  # the model's name on the left, figures right
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:])]
        return COLUMN_GAP.join([first, *rest])

    lines = [line(header)]
    lines.append("-" * len(lines[0]))
    lines += [line(cells) for cells in body]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- plot
def _whiskers(ax, values, ranges, y, color, floor, marker="o", label=None, dy=0.0):
    """Dots at ``values`` (row ``i`` at ``y[i] + dy``) with whiskers over ``ranges``."""
    for i, (value, (lo, hi)) in enumerate(zip(values, ranges)):
        if value != value:
            continue
        x = max(value, floor)
        err = None
        if lo == lo and hi == hi:
            err = [[x - max(min(lo, value), floor)], [max(hi, value, floor) - x]]
        ax.errorbar(
            [x],
            [y[i] + dy],
            xerr=err,
            fmt=marker,
            color=color,
            ms=6,
            capsize=3,
            lw=1.2,
            label=label if i == 0 or label is None else None,
            zorder=3,
        )
        label = None


def _label(ax, values, y, texts, floor, dy=0.0, below=False):
    for i, (value, text) in enumerate(zip(values, texts)):
        if value == value:
            ax.annotate(
                text,
                (max(value, floor), y[i] + dy),
                xytext=(0, -6 if below else 6),
                textcoords="offset points",
                ha="center",
                va="top" if below else "bottom",
                fontsize=8,
            )


def plot_comparison(rows: list[ComparisonRow], *, title: str | None = None):
    """One panel per measured part, sharing the model axis: CPU (idle ● and loaded ◆),
    latency (median ●, tail ▸), throughput and connections held, each a dot with whiskers
    over the range of the trials, on log axes, labelled with its value (connections:
    served/tried). Returns the Figure.
    """
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    def measured(attr):
        return any(getattr(r, attr) == getattr(r, attr) for r in rows)

    panels = [
        p
        for p, attr in (
            ("cpu", "idle_cpu"),
            ("latency", "median_latency"),
            ("throughput", "throughput"),
        )
        if measured(attr)
    ]
    if "cpu" not in panels and measured("loaded_cpu"):
        panels.insert(0, "cpu")
    if any(r.tried for r in rows):
        panels.append("connections")
    panels = panels or ["cpu"]
    y = list(range(len(rows)))
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(3.6 * len(panels) + 1.5, 0.55 * len(rows) + 2.0),
        sharey=True,
        squeeze=False,
    )
    axes = axes[0]
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    for ax, panel in zip(axes, panels):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(plain)
        ax.grid(axis="x", which="major", alpha=0.3)
        ax.grid(axis="y", visible=False)
        if panel == "cpu":
            floor = 1e-4
            idle = [r.idle_cpu for r in rows]
            loaded = [r.loaded_cpu for r in rows]
            _whiskers(
                ax,
                idle,
                [r.idle_cpu_range for r in rows],
                y,
                "tab:red",
                floor,
                label="idle",
                dy=-0.15,
            )
            _label(ax, idle, y, [_share(v) for v in idle], floor, dy=-0.15)
            _whiskers(
                ax,
                loaded,
                [r.loaded_cpu_range for r in rows],
                y,
                "tab:orange",
                floor,
                marker="D",
                label="loaded",
                dy=0.2,
            )
            _label(ax, loaded, y, [_share(v) for v in loaded], floor, dy=0.2, below=True)
            ax.axvline(1.0, color="gray", ls=":", lw=1)
            ax.set_xlim(floor / 2, 3)
            ax.set_xlabel("server CPU (cores, log; floor 0.0001)")
            if any(v == v for v in loaded):
                ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=8)
        elif panel == "latency":
            median = [r.median_latency * 1e3 for r in rows]
            tails = [r.tail_latency * 1e3 for r in rows]
            _whiskers(
                ax,
                median,
                [tuple(v * 1e3 for v in r.median_range) for r in rows],
                y,
                "tab:blue",
                1e-3,
            )
            ax.plot(list(tails), y, ">", color="tab:blue", alpha=0.45, ms=6)
            _label(ax, median, y, [f"{v:.3g}" for v in median], 1e-3)
            names = sorted({r.tail_name for r in rows if r.tail_latency == r.tail_latency})
            ax.set_xlabel(f"reply latency (ms, log): median, ▸ {'/'.join(names) or 'tail'}")
            finite = [v for v in median + tails if v == v and v > 0] or [1.0]
            ax.set_xlim(min(finite) / 2, max(finite) * 3)
        elif panel == "throughput":
            tput = [r.throughput for r in rows]
            _whiskers(ax, tput, [r.throughput_range for r in rows], y, "tab:green", 1.0)
            _label(ax, tput, y, [f"{v:,.0f}" for v in tput], 1.0)
            finite = [v for v in tput if v == v and v > 0] or [1.0]
            ax.set_xlim(min(finite) / 3, max(finite) * 3)
            ax.set_xlabel("throughput (messages/s, log)")
        else:
            held = [float(r.max_connections) if r.tried else math.nan for r in rows]
            _whiskers(ax, held, [(math.nan, math.nan)] * len(rows), y, "tab:purple", 1.0)
            # served/tried: on a log axis 1,013 and 1,050 sit on the same spot
            _label(ax, held, y, [f"{r.max_connections:,}/{r.tried:,}" for r in rows], 1.0)
            tried = max((r.tried for r in rows), default=0)
            ax.axvline(tried, color="gray", ls=":", lw=1)
            ax.set_xlim(0.5, tried * 3)
            ax.set_xlabel(f"connections served at once (of {tried}, log)")
    axes[0].set_yticks(y, [r.label for r in rows])
    axes[0].set_ylim(len(rows) - 0.4, -0.6)
    fig.suptitle(title or "Every model under the same load (whiskers: range of trials)")
    fig.tight_layout()
    return fig
