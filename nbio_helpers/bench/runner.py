"""One benchmark run: every measurement, for every server, in a fixed order.

Usage::

    results = run_bench(Settings(quick=True), progress=print)   # plain data, JSON-able
    print(format_report(results))

The servers run in threads of this process, one at a time, as in the notebooks; the clients
run in a client process of their own (:class:`~nbio_helpers.measure.ClientProcess`, a
:class:`~.worker.LoadProcess`).
"""

from __future__ import annotations

import os
import platform
import selectors
import time
from typing import Any

from nbio_helpers.bench.measurements import (
    idle_cost_entry,
    loopback_ceiling,
    max_connections,
    select_refusal,
    throughput_entry,
)
from nbio_helpers.bench.report import evaluate_targets, size_text
from nbio_helpers.bench.servers import SERVERS
from nbio_helpers.limits import fd_limit
from nbio_helpers.measure.echo import EchoLoad
from nbio_helpers.measure.process import ClientProcess

SIZES = {"small": 64, "large": 64 * 1024}
"""The message sizes of the throughput runs, in bytes."""


class Settings:
    """How long and how big each measurement is (``quick`` shrinks everything)."""

    def __init__(
        self,
        quick: bool = False,
        clients: int = 100,
        connections: int | None = None,
        seconds: float | None = None,
        rounds: int | None = None,
        servers=None,
    ):
        self.quick = quick
        self.rounds = rounds if rounds is not None else (1 if quick else 4)
        self.clients = clients
        self.warmup = 0.1 if quick else 0.3
        self.seconds = seconds if seconds is not None else (0.3 if quick else 1.2)
        self.idle_settle = 0.15 if quick else 0.5
        self.idle_seconds = 0.25 if quick else 1.0
        self.ceiling_seconds = 0.3 if quick else 1.0
        self.connections = connections if connections is not None else (300 if quick else 5000)
        self.select_beyond = 50 if quick else 100
        self.servers = list(servers) if servers else list(SERVERS)

    def echo_load(self, size: int) -> EchoLoad:
        """The throughput runs' load for messages of ``size`` bytes."""
        return EchoLoad(clients=self.clients, size=size, warmup=self.warmup, seconds=self.seconds)

    def as_dict(self) -> dict:
        return dict(vars(self))


def run_bench(settings: Settings, progress=lambda text: None) -> dict:
    """Run every measurement; return the results as plain data (see :func:`.format_report`).

    Throughput is measured in ``settings.rounds`` rounds, the servers in turn (the order
    reversed every other round, so none is always first or last); each server keeps its best
    round: on a shared machine, the best run is the one least disturbed by others.
    """
    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": machine_info(),
        "settings": settings.as_dict(),
        "servers": {},
        "connections": {},
    }
    names = settings.servers
    steps = (
        1 + len(names) * (1 + 2 * settings.rounds) + ("selectors" in names) + ("select" in names)
    )
    step = 0

    def note(text):
        nonlocal step
        step += 1
        progress(f"[{step:2d}/{steps}] {time.perf_counter() - started:5.1f} s  {text}")

    with ClientProcess() as load:
        ping = load.call("ping", timeout=30)
        if "error" in ping:
            raise RuntimeError(f"the load process failed to start: {ping['error']}")
        note("loopback ceiling (1 connection, bulk)")
        results["ceiling"] = loopback_ceiling(load, settings.ceiling_seconds)
        rounds: dict[str, dict[str, list[dict]]] = {
            name: {label: [] for label in SIZES} for name in names
        }
        idle = {}
        for round_ in range(settings.rounds):
            for name in names if round_ % 2 == 0 else names[::-1]:
                with SERVERS[name][0]() as server:
                    if round_ == 0:
                        note(f"{name}: idle CPU, {settings.clients} silent clients")
                        idle[name] = idle_cost_entry(
                            server,
                            load,
                            settings.clients,
                            settings.idle_settle,
                            settings.idle_seconds,
                        )
                    for label, size in SIZES.items():
                        note(
                            f"{name}: echo {size_text(size)} x {settings.clients} clients"
                            + (f", round {round_ + 1}" if settings.rounds > 1 else "")
                        )
                        rounds[name][label].append(
                            throughput_entry(server, load, settings.echo_load(size))
                        )
        for name in names:
            results["servers"][name] = {
                "kind": SERVERS[name][1],
                "rounds": rounds[name],
                "idle": idle[name],
                **{label: best_round(runs) for label, runs in rounds[name].items()},
            }
        if "selectors" in names:
            note(f"selectors: {settings.connections:,} concurrent connections")
            results["connections"]["selectors"] = max_connections(
                load, "selectors", settings.connections
            )
        if "select" in names:
            note(f"select: FD_SETSIZE + {settings.select_beyond} connections")
            results["connections"]["select"] = select_refusal(load, settings.select_beyond)
    results["targets"] = evaluate_targets(results)
    results["meta"]["seconds"] = time.perf_counter() - started
    progress(f"done in {results['meta']['seconds']:.1f} s")
    return results


def best_round(runs: list[dict]) -> dict:
    """The round with the highest throughput, with every round's errors (at most 10) and the
    lowest CPU time per message of any round: the least disturbed of each."""
    best = dict(max(runs, key=lambda r: r["messages_per_second"]))
    best["errors"] = [e for r in runs for e in r["errors"]][:10]
    costs = [r["cpu_us_per_message"] for r in runs if r.get("cpu_us_per_message")]
    best["cpu_us_per_message"] = min(costs, default=None)
    return best


def machine_info() -> dict:
    """What the numbers depend on: OS, CPUs, Python, and how busy the machine was."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "selector": selectors.DefaultSelector.__name__,
        "fd_limit": fd_limit(),
    }
    if hasattr(os, "getloadavg"):
        info["load_average"] = list(os.getloadavg())
    return info


__all__ = ["SIZES", "Settings", "best_round", "machine_info", "run_bench"]
