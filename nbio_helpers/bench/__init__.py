"""``python -m nbio_helpers bench``: every server model side by side, against the peers.

One run measures, on this machine:

* echo throughput with 100 concurrent clients, small (64 B) and large (64 KiB) messages, for
  every model and for two references a user would pick instead: a plain asyncio streams
  server and a plain ``socketserver.ThreadingTCPServer`` (written as a user would, without
  the event log);
* the loopback ceiling (one connection, bulk transfer, large buffers) and each server's
  fraction of it;
* the idle CPU share of each server with 100 connected, silent clients;
* how many concurrent connections the ``selectors`` model holds (target 5,000; the soft
  ``RLIMIT_NOFILE`` is raised where allowed), and the ``select`` model refusing descriptors
  beyond FD_SETSIZE.

The servers run in threads of this process, as in the notebooks; the clients run in a separate
*load process*, so they neither compete with the server for the GIL nor share its descriptor
table.

Usage::

    python -m nbio_helpers bench               # full run, two to three minutes
    python -m nbio_helpers bench --quick       # a few seconds; smoke test
    python -m nbio_helpers bench --clients 50 --json results.json --servers selectors,ref-asyncio

    from nbio_helpers.bench import compare, comparison_table   # notebook-sized, in a cell

One idea per module:

* :mod:`.servers` — every server the bench runs: the models and the two plain peers;
* :mod:`.load` — what the load process does (echo clients, held connections, a bulk sender);
* :mod:`.worker` — the load process itself, and the bench's handle on it;
* :mod:`.measurements` — loopback ceiling, idle CPU, throughput, maximum connections;
* :mod:`.runner` — one full run, in order, with progress;
* :mod:`.report` — the targets, the table, the JSON;
* :mod:`.comparison` — every model under the same load, small enough for notebook 05;
* :mod:`.command` — the ``bench`` command line.
"""
from .command import configure_parser, main, run
from .comparison import NOTEBOOK_MODELS, ModelFigures, compare, comparison_table, plot_comparison
from .load import BULK_BUFFER, bulk_send, echo_load, hold
from .measurements import (idle_cpu, loopback_ceiling, max_connections, select_refusal,
                           throughput)
from .report import IDLE_CPU_TARGET, IDLE_TARGET_SERVERS, evaluate_targets, format_report
from .runner import SIZES, Settings, machine_info, run_bench
from .servers import REFERENCE, SERVERS, AsyncioStreamsReference, ThreadingTCPReference
from .worker import LoadProcess, worker_main

__all__ = [
    "BULK_BUFFER", "IDLE_CPU_TARGET", "IDLE_TARGET_SERVERS", "NOTEBOOK_MODELS", "REFERENCE",
    "SERVERS", "SIZES", "AsyncioStreamsReference", "LoadProcess", "ModelFigures", "Settings",
    "ThreadingTCPReference", "bulk_send", "compare", "comparison_table", "configure_parser",
    "echo_load", "evaluate_targets", "format_report", "hold", "idle_cpu", "loopback_ceiling",
    "machine_info", "main", "max_connections", "plot_comparison", "run", "run_bench",
    "select_refusal", "throughput", "worker_main",
]
