"""Why a polling round costs more after a longer pause (notebook 03, section 5.2).

    costs = round_cost_after([0.001, 0.01, 0.05])     # about 1.5 s
    costs["busy"]                  # seconds one round takes right after another round
    costs["sleep"][0.01]           # ... right after time.sleep(0.01)
    costs["spin"][0.01]            # ... right after 10 ms spent spinning on the clock
    costs["preempted"][0.01]       # share of those spins the OS interrupted (Linux), or None

A round is the classic loop's work with nothing to do: one ``accept()`` on an idle listener and
one ``recv()`` on each of ``sockets`` idle connections, every one raising BlockingIOError.
It is timed with ``perf_counter`` (wall time: a round is far shorter than a time slice, so
it is almost never interrupted, and this works on every OS, where per-thread CPU clocks are
coarse on Windows). The rounds run in a thread of their own while the caller only waits.
"""

from __future__ import annotations

import socket
import statistics
import sys
import threading
import time
from typing import Any

if sys.platform == "win32":  # no resource module
    resource, _RUSAGE_THREAD = None, None
else:
    import resource

    _RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", None)  # Linux only


def _idle_sockets(n: int):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    clients = [socket.create_connection(listener.getsockname(), timeout=5) for _ in range(n)]
    served: list[socket.socket] = []
    deadline = time.monotonic() + 5
    while len(served) < n and time.monotonic() < deadline:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            time.sleep(0.001)
            continue
        sock.setblocking(False)
        served.append(sock)
    return listener, clients, served


def _one_round(listener, socks) -> int:
    start = time.perf_counter_ns()
    try:
        listener.accept()
    except BlockingIOError:
        pass
    for sock in socks:
        try:
            sock.recv(1024)
        except BlockingIOError:
            pass
    return time.perf_counter_ns() - start


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _involuntary_switches() -> int | None:
    if _RUSAGE_THREAD is None:
        return None
    return resource.getrusage(_RUSAGE_THREAD).ru_nivcsw


def round_cost_after(
    intervals=(0.001, 0.01, 0.05), rounds: int = 15, sockets: int = 10, budget: float = 3.0
) -> dict:
    """Median time of one idle polling round after another round, after a spin and after a
    sleep of each interval (seconds). ``rounds`` per setting, within ``budget`` seconds.

    Returns ``{"busy": s, "spin": {interval: s}, "sleep": {interval: s},
    "preempted": {interval: share of spins interrupted by the OS, or None}}``.
    """
    listener, clients, socks = _idle_sockets(sockets)
    result: dict[str, Any] = {"busy": float("nan"), "spin": {}, "sleep": {}, "preempted": {}}
    deadline = time.monotonic() + budget

    def body():
        for _ in range(200):  # warm: a busy loop's state
            _one_round(listener, socks)
        result["busy"] = statistics.median(_one_round(listener, socks) for _ in range(200)) / 1e9
        for interval in intervals:
            for kind, wait in (("spin", _spin), ("sleep", time.sleep)):
                costs, preempted = [], 0
                for _ in range(rounds):
                    if time.monotonic() + interval > deadline:
                        break
                    _one_round(listener, socks)  # the round before the wait
                    before = _involuntary_switches()
                    wait(interval)
                    after = _involuntary_switches()
                    costs.append(_one_round(listener, socks))
                    preempted += before is not None and after is not None and after > before
                result[kind][interval] = statistics.median(costs) / 1e9 if costs else float("nan")
                if kind == "spin":
                    result["preempted"][interval] = (
                        preempted / len(costs) if costs and _RUSAGE_THREAD else None
                    )

    worker = threading.Thread(target=body, name="round-cost", daemon=True)
    try:
        worker.start()
        worker.join(budget + 2)
    finally:
        for sock in [*socks, *clients, listener]:
            sock.close()
    return result


if __name__ == "__main__":
    import os

    print("load", os.getloadavg()[0] if hasattr(os, "getloadavg") else "?")
    t = time.perf_counter()
    r = round_cost_after()
    print(f"({time.perf_counter() - t:.2f} s)  busy round {r['busy'] * 1e6:.1f} µs")
    for i in r["spin"]:
        print(
            f"  {i * 1e3:4.0f} ms: after a spin {r['spin'][i] * 1e6:5.1f} µs "
            f"(spins preempted {r['preempted'][i]:.0%}), "
            f"after a sleep {r['sleep'][i] * 1e6:5.1f} µs"
        )


__all__ = ["round_cost_after"]
