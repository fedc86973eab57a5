"""Measurements: one definition of each figure, used by notebooks 03-05 and the bench.

Every latency and throughput figure is measured by clients in a separate process (the
:mod:`client process <.process>`): a client thread in the kernel would share Python's GIL
with the server's thread and distort exactly what is being compared. The servers stay in
background threads of the kernel. CPU shares are fractions of one core (1.0 = one core
fully busy) of the server's own threads (:mod:`nbio_helpers.cpu`); times are in seconds.
Figures from repeated trials come with their range (:class:`~nbio_helpers.measure.stats.Spread`);
the slow end of a distribution is named by the tail rule of :mod:`nbio_helpers.measure.stats`
(p99 only with 1,000 samples, p90 with 100, else "max").

=====================================  ================================================
figure                                 function (module)
=====================================  ================================================
CPU and loop rounds of an idle server  :func:`idle_cost` (:mod:`.idle`)
latency of sequential requests         :func:`latency_stats` (:mod:`.latency`)
throughput under concurrent clients    :func:`throughput` (:mod:`.latency`), the load it
                                       runs: :class:`EchoLoad`, :func:`measure_load`
                                       (:mod:`.echo`)
the polling trade-off (notebook 03)    :func:`poll_interval_sweep`, :func:`plot_tradeoff`
every model compared (04, 05, bench)   :func:`compare`, :func:`comparison_table`,
                                       :func:`plot_comparison` (:mod:`.comparison`)
what holds on any machine (04, 05)     :func:`comparison_relations`,
                                       :func:`print_relations` (:mod:`.relations`)
the busy loop and its neighbours (03)  :func:`neighbour_slowdown` (:mod:`.gil`)
how waits scale with N (05)            :mod:`nbio_helpers.measure.scaling`
=====================================  ================================================

::

    from nbio_helpers import PollingServer
    from nbio_helpers.measure import idle_cost, latency_stats, poll_interval_sweep

    with PollingServer(interval=0) as server:
        idle_cost(server, clients=10, seconds=0.5).cpu     # ~1.0: a core, doing nothing
        latency_stats(server, requests=50).median           # seconds, ~0.00005

Every function here is bounded in time and stops what it starts; :func:`stop_client_processes`
(called by ``notebook.finish()``) stops the client process.

Deprecated names, kept while notebooks 03-05 use them: the sweep rows' ``"p99"`` key (``nan``
below 1,000 samples), and :class:`IdleCost`'s ``wakeups_per_second``.
"""

from nbio_helpers.measure.comparison import (
    PARTS,
    VARIANTS,
    ComparisonRow,
    compare,
    comparison_models,
    comparison_table,
    plot_comparison,
)
from nbio_helpers.measure.echo import EchoLoad, LoadRun, measure_load
from nbio_helpers.measure.gil import WORKLOADS, NeighbourSlowdown, neighbour_slowdown
from nbio_helpers.measure.idle import (
    HeldClients,
    IdleCost,
    idle_clients,
    idle_cost,
    idle_cost_held,
    loop_rounds,
)
from nbio_helpers.measure.latency import LatencyStats, Throughput, latency_stats, throughput
from nbio_helpers.measure.process import (
    ClientProcess,
    ClientProcessError,
    client_process,
    running_client_processes,
    stop_client_processes,
)
from nbio_helpers.measure.relations import Relation, comparison_relations, print_relations
from nbio_helpers.measure.stats import BEYOND, Spread, Tail, percentile, tail, tail_name
from nbio_helpers.measure.sweep import plot_tradeoff, poll_interval_sweep, spacing_for

__all__ = [
    "BEYOND",
    "PARTS",
    "VARIANTS",
    "WORKLOADS",
    "ClientProcess",
    "ClientProcessError",
    "ComparisonRow",
    "EchoLoad",
    "HeldClients",
    "IdleCost",
    "LatencyStats",
    "LoadRun",
    "NeighbourSlowdown",
    "Relation",
    "Spread",
    "Tail",
    "Throughput",
    "client_process",
    "compare",
    "comparison_models",
    "comparison_relations",
    "comparison_table",
    "idle_clients",
    "idle_cost",
    "idle_cost_held",
    "latency_stats",
    "loop_rounds",
    "measure_load",
    "neighbour_slowdown",
    "percentile",
    "plot_comparison",
    "plot_tradeoff",
    "poll_interval_sweep",
    "print_relations",
    "running_client_processes",
    "spacing_for",
    "spare_cores",
    "stop_client_processes",
    "tail",
    "tail_name",
    "throughput",
]


def spare_cores(seconds: float = 0.25) -> float | None:
    """How many cores are idle now: the machine's idle CPU time over ``seconds``, in cores.

    Busy polling needs one. Measured (``psutil.cpu_percent``), not read from the load
    average, which still counts busy loops that ended a minute ago (this notebook's own).
    None where it cannot be measured.
    """
    try:
        import psutil

        busy = psutil.cpu_percent(interval=seconds)
    except (ImportError, OSError):
        return None
    return (psutil.cpu_count() or 1) * (100.0 - busy) / 100.0
