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

    from nbio_helpers.measure import compare, comparison_table   # notebook-sized, in a cell

One idea per module:

* :mod:`.servers` — every server the bench runs: the models and the two plain peers;
* :mod:`.load` — what the load process does (echo clients, held connections, a bulk sender);
* :mod:`.worker` — the load process itself, and the bench's handle on it;
* :mod:`.measurements` — loopback ceiling, idle CPU, throughput, maximum connections;
* :mod:`.runner` — one full run, in order, with progress;
* :mod:`.report` — the targets, the table, the JSON;
* :mod:`.command` — the ``bench`` command line.

The names below are imported on first use (PEP 562), so that ``import
nbio_helpers.bench.worker`` (the client process, and :mod:`nbio_helpers.measure`) stays light
and free of import cycles.
"""

import importlib

_EXPORTS = {
    ".command": ("configure_parser", "main", "run"),
    ".load": ("BULK_BUFFER", "bulk_send", "echo_load", "hold", "sequential_echo"),
    ".measurements": (
        "idle_cost_entry",
        "loopback_ceiling",
        "max_connections",
        "select_refusal",
        "throughput_entry",
    ),
    ".report": ("IDLE_CPU_TARGET", "IDLE_TARGET_SERVERS", "evaluate_targets", "format_report"),
    ".runner": ("SIZES", "Settings", "machine_info", "run_bench"),
    ".servers": ("REFERENCE", "SERVERS", "AsyncioStreamsReference", "ThreadingTCPReference"),
    ".worker": ("LoadProcess", "worker_main"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # next time without __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
