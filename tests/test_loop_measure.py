"""Notebook 06's measurements: they run, stop what they start, and report plain numbers.

No timed performance assertions (machines are noisy), except facts that load cannot break:
a task that blocks the loop for 50 ms delays the others by at least that much.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from nbio_helpers import start_server
from nbio_helpers.loop.measure import (
    LoopFigures,
    blocking_call_latency,
    compare_loops,
    echo_clients,
    idle_memory_of,
    load_from_another_process,
    loops_table,
    p90_or_nan,
    plot_blocking_call,
)

pytestmark = [
    pytest.mark.alone,
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("nothing_left_running"),
]


def test_p90_only_with_enough_echoes():
    assert p90_or_nan(list(range(1, 101))) == 90  # the tail rule: 100 samples
    assert math.isnan(p90_or_nan(list(range(1, 100))))  # 99: too few to name a p90
    assert math.isnan(p90_or_nan([]))


@pytest.mark.slow
def test_echo_clients_in_process_and_in_another_process():
    with start_server("tasks", name="measured") as server:
        here = echo_clients(*server.address, clients=3, warmup=0.05, seconds=0.2, samples=True)
        there = load_from_another_process(
            server.address, clients=3, warmup=0.05, seconds=0.2, interval=0.01
        )
    for result in (here, there):
        assert result["ok"] and result["completed"] > 0, result
        assert result["median"] <= result["tail"] <= result["max"]
        assert "p90" not in result and "p99" not in result  # named by the tail rule
    assert here["tail_name"] in ("p90", "p99") and there["tail_name"] in ("max", "p90")
    assert len(here["samples"]) == here["completed"]
    assert there["completed"] <= 3 * (0.2 / 0.01 + 1)  # paced: one per 10 ms per client


@pytest.mark.slow
def test_compare_loops_and_its_table():
    rows = compare_loops(("tasks", "asyncio"), rounds=2, clients=5, warmup=0.05, seconds=0.15)
    assert [r.model for r in rows] == ["tasks", "asyncio"]
    for row in rows:
        assert row.ok and len(row.throughput) == len(row.median) == len(row.p90) == 2
        assert all(x > 0 for x in row.throughput)
        assert len(row.latencies) == sum(row.messages) > 200
        for name in ("throughput", "median", "p90"):  # pooled, within the rounds' range
            spread = row.spread(name)
            assert spread.low <= spread.value <= spread.high, (name, spread)
    table = loops_table(rows).splitlines()
    assert table[0].split()[0] == "model" and table[1].startswith("tasks")
    assert "[" in table[1]  # two rounds: a spread
    fake = LoopFigures("x", [1.0, 3.0, 2.0], [0.1, 0.2, 0.3], [1, 1, 1], True)
    assert tuple(fake.spread("throughput")[:3]) == (2.0, 1.0, 3.0)  # no pooled data: median
    pooled = LoopFigures(
        "x", [1.0, 3.0], [0.1, 0.2], [0.2, 0.3], True, messages=[10, 30], seconds=[10.0, 10.0]
    )
    assert pooled.spread("throughput").value == 2.0  # 40 messages in 20 s
    once = loops_table([LoopFigures("tasks", [1234.0], [0.001], [0.002], True)]).splitlines()
    assert once[1].split() == ["tasks", "1,234", "1.000", "ms", "2.000", "ms"]  # no brackets


@pytest.mark.slow
def test_one_blocking_call_delays_every_other_client():
    blocked = blocking_call_latency(blocking=True, pause=0.05, pauses=2, clients=3, samples=True)
    polite = blocking_call_latency(blocking=False, pause=0.05, pauses=2, clients=3, samples=True)
    assert blocked["ok"] and polite["ok"]
    assert blocked["max"] >= 0.04  # everyone waited for the sleeping task
    assert len(blocked["paused_at"]) == 2 and blocked["blocking"] and not polite["blocking"]
    fig = plot_blocking_call(blocked, polite)
    assert len(fig.axes) == 2
    plt.close(fig)


@pytest.mark.slow
@pytest.mark.parametrize("model, count", [("tasks", 300), ("threads", 50)])
def test_idle_memory_of_a_model(model, count):
    result = idle_memory_of(model, count)
    assert result["connections"] == count, result
    assert math.isfinite(result["bytes_per_connection"])
    assert result["rss_after"] > 0 and result["note"] == ""
