"""The polling trade-off, measured: CPU and latency for each sleep between rounds.

::

    results = poll_interval_sweep([0, 0.0001, 0.001, 0.01, 0.05])   # about 3 s
    plot_tradeoff(results)          # measured dots with whiskers, and the theory of both axes
    results[2]["cpu_per_round"]     # seconds of CPU one round costs at 1 ms

For each interval a :class:`~nbio_helpers.models.PollingServer` runs with silent clients
connected (from the client process); its CPU share is measured over whole rounds in
``repeat`` windows, then the latency of sequential requests from the client process in
``trials`` series. The theory:

* latency: a request arrives at a random point of the sleep, so it waits
  ``interval / 2`` on average (the median of a uniform wait);
* CPU: one round costs ``c`` seconds of CPU and then sleeps ``interval``, so the share is
  ``c / (c + interval)``. ``c`` is measured (``cpu_per_round``), and it is *not* constant: a
  thread that slept long wakes up with cold caches (other programs ran on its core
  meanwhile), so its round costs several times what a round costs right after another.
  That is why sleeping ten times longer saves less than ten times the CPU.
"""

from __future__ import annotations

import math

from nbio_helpers.measure.idle import idle_clients, idle_cost_held
from nbio_helpers.measure.latency import latency_stats
from nbio_helpers.measure.process import client_process
from nbio_helpers.measure.stats import Spread

__all__ = ["auto_requests", "plot_tradeoff", "poll_interval_sweep", "spacing_for"]


def _default_polling_server(interval: float):
    from nbio_helpers.models.polling import (
        PollingServer,  # local: models import clients, not measure
    )

    return PollingServer(interval=interval, record_events=False)


def spacing_for(interval: float) -> tuple[float, float]:
    """The random pause before each latency request for a loop sleeping ``interval``:
    ``(0, interval)`` (every point of the sleep equally likely), at least ``(0, 0.5 ms)``."""
    return (0.0, max(0.0005, interval))


def auto_requests(interval: float, budget: float, trials: int = 1) -> int:
    # A request costs about one period (random pause + wait): fit them in the budget.
    return int(min(100, max(5, round(budget / trials / max(interval, 0.0005)))))


def poll_interval_sweep(
    intervals,
    seconds: float = 0.3,
    requests: int | None = None,
    *,
    clients: int = 10,
    repeat: int = 3,
    trials: int = 3,
    latency_budget: float = 0.5,
    timeout: float = 5.0,
    make_server=None,
    process=None,
) -> list[dict]:
    """For each poll interval, start a polling server and measure what it costs.

    Parameters
    ----------
    intervals:
        Seconds slept between polling rounds, e.g. ``[0, 0.0001, 0.001, 0.01, 0.05]``
        (0 = busy polling).
    seconds:
        CPU measuring time per interval, split into ``repeat`` windows (each at least three
        rounds long), with ``clients`` silent clients connected.
    requests:
        Latency requests per trial; default: as many as fit in ``latency_budget`` seconds
        (between 5 and 100 per trial).
    clients:
        Silent clients kept connected during both measurements (each round polls them).
    repeat, trials:
        CPU windows and latency series per interval: each figure comes with its range.
    timeout:
        Bound on each latency measurement.
    make_server:
        ``make_server(interval) -> Server`` (not started); default: a
        :class:`~nbio_helpers.models.PollingServer` without event recording.
    process:
        The :class:`~.process.ClientProcess` to measure from (default: the shared one).

    Returns
    -------
    list of dict
        One per interval, in the given order, with keys

        * ``interval``; ``cpu`` (share of one core), ``cpu_low``, ``cpu_high`` (range of the
          windows);
        * ``rounds_per_second`` and ``period`` (seconds per round: the interval plus the
          round's work plus the timer's lateness); ``cpu_per_round`` (seconds of CPU per
          round, ``c``), ``cpu_per_round_low``, ``cpu_per_round_high``;
        * ``cpu_theory``: ``c / (c + interval)``;
        * ``median``, ``median_low``, ``median_high`` (seconds: pooled median, and the range
          of the trials' medians), ``tail`` and ``tail_name`` (``p90`` or ``max``, see
          :mod:`nbio_helpers.measure.stats`), ``mean``, ``samples`` (completed requests);
        * ``theory``: ``interval / 2``, the expected median wait;
        * ``p99``: deprecated, the p99 where 1,000 samples support one, else ``nan``.
    """
    make_server = make_server or _default_polling_server
    process = process or client_process()
    results = []
    for interval in intervals:
        n = requests or auto_requests(interval, latency_budget, trials)
        window = max(seconds / repeat, 3 * interval)
        with (
            make_server(interval) as server,
            idle_clients(server, clients, process=process) as held,
        ):
            cost = idle_cost_held(server, held, window, repeat=repeat)
            stats = latency_stats(
                server,
                requests=n,
                timeout=timeout,
                trials=trials,
                spacing=spacing_for(interval),
                process=process,
            )
        results.append(_row(interval, cost, stats))
    return results


def _row(interval: float, cost, stats) -> dict:
    per_round = [
        share / rate if rate and rate > 0 else math.nan
        for share, rate in zip(cost.spread.trials, cost.round_spread.trials)
    ]
    c = cost.cpu_per_round
    round_cost = Spread.of(per_round, pooled=c)
    return {
        "interval": interval,
        "cpu": cost.cpu,
        "cpu_low": cost.spread.low,
        "cpu_high": cost.spread.high,
        "rounds_per_second": cost.rounds_per_second,
        "period": 1 / cost.rounds_per_second if cost.rounds_per_second > 0 else math.nan,
        "cpu_per_round": c,
        "cpu_per_round_low": round_cost.low,
        "cpu_per_round_high": round_cost.high,
        "cpu_theory": c / (c + interval) if c > 0 else math.nan,
        "median": stats.median,
        "median_low": stats.spread.low,
        "median_high": stats.spread.high,
        "tail": stats.tail,
        "tail_name": stats.tail_name,
        "mean": stats.mean,
        "samples": stats.count,
        "theory": interval / 2,
        # Deprecated (notebook 03 prints it): the p99, nan below 1,000 samples.
        "p99": stats.tail if stats.tail_name == "p99" else math.nan,
    }


# ---------------------------------------------------------------------------- plot
def _interval_label(interval: float) -> str:
    if interval == 0:
        return "0 (busy)"
    ms = interval * 1e3
    return f"{ms:g} ms" if ms >= 0.1 else f"{ms * 1e3:g} µs"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def plot_tradeoff(results, ax=None, *, title: str | None = None):
    """Draw the CPU-vs-latency trade-off of a poll-interval sweep; return the Figure.

    ``results`` is the list returned by :func:`poll_interval_sweep` (or dicts with at least
    ``interval``, ``cpu`` and ``median``). On log-log axes: x = reply latency (ms), y = CPU
    share of one core.

    * Filled dots: measured (median latency, CPU share), labelled with the interval; the
      whiskers span the trials (``median_low..median_high``, ``cpu_low..cpu_high``) and a
      faint bar reaches the tail (p90 or max).
    * Open dots on a dashed line: the theory of both axes, latency ``interval / 2`` and CPU
      ``c / (c + interval)`` with ``c`` the CPU per round measured at that interval (busy
      polling has no theoretical wait and gets no open dot).
    * Dotted line: what the CPU would be if every round cost what it costs at the shortest
      sleep measured; the measured dots above it show that a round after a long sleep costs
      more.
    """
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
    else:
        fig = ax.figure
    floor = 1e-4  # CPU shares below 0.01 % of a core are drawn at the floor (log axis)
    points = sorted(
        (r for r in results if _finite(r.get("cpu")) and _finite(r.get("median"))),
        key=lambda r: r["interval"],
    )

    def cpu_of(value):
        return max(value, floor)

    theory = [
        (r["interval"] * 500, cpu_of(r.get("cpu_theory", r["cpu"])))
        for r in points
        if r["interval"] > 0 and _finite(r.get("cpu_theory", r["cpu"]))
    ]
    if theory:
        ax.plot(
            *zip(*theory),
            "o--",
            color="tab:gray",
            mfc="white",
            ms=7,
            zorder=2,
            label="theory: latency = interval / 2, CPU = c / (c + interval)",
        )
    sleeping = [r for r in points if r["interval"] > 0 and _finite(r.get("cpu_per_round"))]
    if len(sleeping) >= 2:
        c0 = sleeping[0]["cpu_per_round"]
        xs = [r["interval"] * 500 for r in sleeping]
        ax.plot(
            xs,
            [cpu_of(c0 / (c0 + r["interval"])) for r in sleeping],
            ":",
            color="tab:green",
            lw=1.5,
            zorder=1,
            label=f"if every round cost c = {c0 * 1e6:.0f} µs "
            f"(as at {_interval_label(sleeping[0]['interval'])})",
        )
    for r in points:
        x, y = r["median"] * 1e3, cpu_of(r["cpu"])
        if _finite(r.get("tail")):
            ax.plot([x, r["tail"] * 1e3], [y, y], "-", color="tab:blue", alpha=0.25, lw=3, zorder=1)
        lo, hi = r.get("median_low"), r.get("median_high")
        clo, chi = r.get("cpu_low"), r.get("cpu_high")
        xerr = [[x - lo * 1e3], [hi * 1e3 - x]] if _finite(lo) and _finite(hi) else None
        yerr = [[y - cpu_of(clo)], [cpu_of(chi) - y]] if _finite(clo) and _finite(chi) else None
        ax.errorbar(
            [x],
            [y],
            xerr=xerr,
            yerr=yerr,
            fmt="o",
            color="tab:blue",
            ms=7,
            capsize=3,
            lw=1.2,
            zorder=3,
        )
        busy = r["interval"] == 0  # the leftmost: label it on the right
        ax.annotate(
            _interval_label(r["interval"]),
            (x, y),
            textcoords="offset points",
            xytext=(7, 7) if busy else (-7, 7),
            ha="left" if busy else "right",
            fontsize=9,
        )
    if points:
        tails = sorted({r.get("tail_name", "tail") for r in points if _finite(r.get("tail"))})
        ax.plot(
            [],
            [],
            "o",
            color="tab:blue",
            label="measured: median, whiskers = range of trials"
            + (f" (bar: to {'/'.join(tails)})" if tails else ""),
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.yaxis.set_major_formatter(plain)
    ax.set_xlabel("reply latency (ms, log scale), measured from another process")
    ax.set_ylabel("server CPU (share of one core, log scale)")
    ax.axhline(1.0, color="tab:red", lw=0.8, ls=":", zorder=0, label="one whole core")
    ax.set_ylim(floor / 1.5, 2.0)
    ax.set_title(title or "Polling: CPU or latency, pick one")
    ax.grid(True, which="major", alpha=0.3)
    if points:
        ax.legend(loc="lower left", fontsize=8)
    return fig
