"""Every model under the same load, notebook-sized: the comparison table of notebook 05.

A few seconds in all, so that a notebook cell can run it (the full benchmark is the ``bench``
command)::

    rows = compare()                    # one ModelFigures per model of NOTEBOOK_MODELS
    print(comparison_table(rows))
    plot_comparison(rows)
"""
from __future__ import annotations

import dataclasses

from .. import measure
from ..cpu import cpu_share
from ..limits import raise_fd_limit
from ..models import MODELS
from .measurements import echo_with_cpu, held_echoes
from .report import fmt
from .worker import LoadProcess

NOTEBOOK_MODELS = (
    ("blocking", "blocking", {}),
    ("threads", "threads", {}),
    ("polling (busy)", "polling", {}),
    ("polling (10 ms sleep)", "polling", {"interval": 0.01}),
    ("select", "select", {}),
    ("selectors", "selectors", {}),
    ("asyncio", "asyncio", {}),
)
"""``(label, model, options)`` of every model, as notebook 05 compares them."""


@dataclasses.dataclass
class ModelFigures:
    """One model's row in :func:`compare`. CPU in cores (1.0 = one core busy), times in s."""

    label: str
    model: str
    idle_cpu: float          # silent clients connected
    loaded_cpu: float        # during the concurrent load
    median_latency: float    # one client, sequential requests
    p99_latency: float
    throughput: float        # messages per second under the concurrent load
    load_ok: bool            # every echo of the load came back intact
    max_connections: int     # connections echoed at the same time...
    tried: int               # ...of this many opened

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def compare(models=NOTEBOOK_MODELS, *, idle_clients: int = 20, idle_seconds: float = 0.15,
            requests: int = 20, size: int = 64, load_clients: int = 20, load_seconds: float = 0.15,
            connections: int = 1100, timeout: float = 5.0) -> list[ModelFigures]:
    """Every model under the same load, one after another: the benchmark, notebook-sized.

    For each model: idle CPU with ``idle_clients`` silent clients; median and p99 latency of
    ``requests`` sequential requests from this process
    (:func:`nbio_helpers.measure.latency_stats`);
    throughput and CPU while ``load_clients`` clients echo ``size``-byte messages for
    ``load_seconds``; how many of ``connections`` concurrent connections get their echo at the
    same time. The load and the connections come from a separate load process (as in the
    benchmark), so they do not compete with the server for this process's GIL.
    A few seconds in all.
    """
    raise_fd_limit(connections + 300)
    rows = []
    with LoadProcess() as load:
        for label, model, options in models:
            # A backlog for every client at once: a slow accept() must not fail a connect().
            with MODELS[model](name=f"compare-{model}", record_events=False,
                               backlog=connections + 100, **options) as server:
                with measure.idle_clients(server, idle_clients, timeout=0.2):
                    idle = cpu_share(server.cpu, idle_seconds)
                spacing = (0.0, max(0.002, options.get("interval", 0.0)))
                lat = measure.latency_stats(server.address, requests, size, timeout, spacing)
                run, cpu, wall = echo_with_cpu(server, load, load_clients, size, warmup=0.0,
                                               seconds=load_seconds)
                probe = held_echoes(server, load, connections, timeout=timeout + 30,
                                    within=timeout, connect_timeout=1.0, reply_within=timeout,
                                    stall=0.5)
            for reply in (run, probe):
                if "error" in reply:
                    raise RuntimeError(f"the load process failed: {reply['error']}")
            rows.append(ModelFigures(label, model, idle, cpu / wall, lat.median, lat.p99,
                                     run["messages_per_second"], not run["errors"],
                                     probe["echoed_ok"], probe["opened"]))
    return rows


def comparison_table(rows: list[ModelFigures]) -> str:
    """:func:`compare`'s rows as a fixed-width text table."""
    header = (f"{'model':<22}{'idle CPU':>9}{'loaded CPU':>11}{'median':>10}{'p99':>10}"
              f"{'msg/s':>9}{'connections':>13}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.label:<22}{fmt(r.idle_cpu, '.0%'):>9}{fmt(r.loaded_cpu, '.0%'):>11}"
                     f"{fmt(r.median_latency * 1e3, '.2f') + ' ms':>10}"
                     f"{fmt(r.p99_latency * 1e3, '.2f') + ' ms':>10}"
                     f"{r.throughput:>9,.0f}{f'{r.max_connections}/{r.tried}':>13}")
    return "\n".join(lines)


def plot_comparison(rows: list[ModelFigures], title: str | None = None):
    """Four panels: CPU (idle and loaded), latency (median bar, p99 mark), throughput, and
    connections served at once. Returns the Figure."""
    import matplotlib.pyplot as plt

    labels = [r.label for r in rows]
    y = list(range(len(rows)))
    fig, (ax_cpu, ax_lat, ax_tput, ax_conn) = plt.subplots(
        1, 4, figsize=(12, 0.45 * len(rows) + 2.2), sharey=True)
    ax_cpu.barh([i - 0.2 for i in y], [r.idle_cpu for r in rows], height=0.4,
                color="tab:red", label="idle")
    ax_cpu.barh([i + 0.2 for i in y], [r.loaded_cpu for r in rows], height=0.4,
                color="tab:orange", label="loaded")
    ax_cpu.set_xlabel("CPU (cores)")
    ax_cpu.set_yticks(y, labels)
    ax_cpu.invert_yaxis()
    ax_cpu.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    ax_lat.barh(y, [r.median_latency * 1e3 for r in rows], color="tab:blue", label="median")
    ax_lat.plot([r.p99_latency * 1e3 for r in rows], y, "k|", markersize=12, label="p99")
    ax_lat.set_xscale("log")
    ax_lat.set_xlabel("latency (ms, log)")
    ax_lat.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    ax_tput.barh(y, [r.throughput for r in rows], color="tab:green")
    ax_tput.set_xlabel("throughput (messages/s)")
    ax_conn.barh(y, [r.max_connections for r in rows], color="tab:purple")
    tried = max((r.tried for r in rows), default=0)   # the blocking model may try fewer
    ax_conn.axvline(tried, color="grey", linestyle=":", linewidth=1)
    ax_conn.set_xlabel(f"connections served at once (of {tried})")
    for ax in (ax_cpu, ax_lat, ax_tput, ax_conn):
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title or "Every model under the same load")
    fig.tight_layout()
    return fig
