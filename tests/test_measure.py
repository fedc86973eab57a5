"""nbio_helpers.measure: idle cost, latency, throughput, sweep and trade-off plot, measured
from the client process. Structure only: no timed assertions (see test_relations.py)."""

import dataclasses
import math
import socket
import threading

import matplotlib

matplotlib.use("Agg")

import pytest

from nbio_helpers import AsyncioServer, PollingServer, SelectServer, running_servers
from nbio_helpers.events import ACCEPT, EOF
from nbio_helpers.measure import (
    EchoLoad,
    HeldClients,
    IdleCost,
    LatencyStats,
    Spread,
    Throughput,
    idle_clients,
    idle_cost,
    latency_stats,
    plot_tradeoff,
    poll_interval_sweep,
    running_client_processes,
    spare_cores,
    throughput,
)
from nbio_helpers.measure.idle import loop_rounds, next_round
from nbio_helpers.measure.sweep import auto_requests, spacing_for
from nbio_helpers.server import wait_until


def within(value, low, high) -> bool:
    """``low <= value <= high``, give or take rounding (a ratio of totals against the ratios
    of its parts)."""
    slack = 1e-9 * max(abs(low), abs(high))
    return low - slack <= value <= high + slack


pytestmark = [pytest.mark.alone, pytest.mark.timeout(30)]


# ------------------------------------------------------------------------- latency
def test_latency_stats_summary():
    stats = LatencyStats.from_samples([0.003, 0.001, 0.002], requested=5)
    assert stats.median == 0.002
    assert (stats.tail_name, stats.tail) == ("max", 0.003)  # 3 samples: no p99, no p90
    assert stats.mean == pytest.approx(0.002)
    assert stats.count == 3 and stats.requested == 5
    assert stats.ms() == {"median_ms": 2.0, "max_ms": 3.0, "mean_ms": 2.0, "count": 3}


def test_latency_stats_of_trials_pools_them_and_keeps_the_spread():
    stats = LatencyStats.from_samples([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]] * 20)
    assert stats.count == 120 and stats.tail_name == "p90"
    assert stats.spread.trials == (2.0, 5.0) * 20
    assert (stats.spread.low, stats.spread.high) == (2.0, 5.0)
    assert stats.spread.low <= stats.median <= stats.spread.high


def test_latency_stats_of_nothing_is_nan():
    stats = LatencyStats.from_samples([])
    assert math.isnan(stats.median) and math.isnan(stats.tail) and stats.count == 0


def test_latency_stats_measures_every_request_from_another_process():
    with SelectServer() as server:
        stats = latency_stats(server, requests=20, size=100, spacing=(0, 0.001), trials=3)
        assert server.events.count(ACCEPT) == 3  # one connection per trial
    assert stats.count == 60 and stats.requested == 20
    assert len(stats.spread.trials) == 3
    assert all(s > 0 for s in stats.samples)
    assert stats.median <= stats.tail
    assert running_client_processes()  # measured from there


def test_latency_stats_takes_an_address_too():
    with SelectServer() as server:
        assert latency_stats(server.address, requests=3).count == 3


def test_latency_stats_is_bounded_by_its_timeout():
    # A listener that never accepts: the connection completes in the backlog, no reply ever.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        with pytest.raises(TimeoutError):
            latency_stats(silent.getsockname(), requests=3, timeout=0.3)


def test_latency_stats_rejects_a_wrong_echo():
    listener = socket.create_server(("127.0.0.1", 0))

    def parrot():  # echoes unchanged, not upper-cased
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    thread = threading.Thread(target=parrot, daemon=True)
    thread.start()
    try:
        with pytest.raises(ValueError, match="echo mismatch"):
            latency_stats(listener.getsockname(), requests=2, timeout=2)
    finally:
        thread.join(5)
        listener.close()
    assert not thread.is_alive()


def test_latency_pacing_is_checked():
    with SelectServer() as server:
        assert latency_stats(server, requests=3, pace="sleep").count == 3
        with pytest.raises(ValueError, match="pace"):
            latency_stats(server, requests=3, pace="nap")
        with pytest.raises(ValueError, match="spacing"):
            latency_stats(server, requests=3, spacing=(0.002, 0.001))


def test_stratified_pauses_cover_the_spacing_evenly():
    import random

    from nbio_helpers.bench.load import stratified_pauses

    pauses = stratified_pauses(10, (0.0, 1.0), random.Random(1))
    assert sorted(int(p * 10) for p in pauses) == list(range(10))  # one per tenth


def test_spacing_spans_the_sleep():
    assert spacing_for(0) == (0.0, 0.0005)
    assert spacing_for(0.01) == (0.0, 0.01)


# ---------------------------------------------------------------------- throughput
def test_throughput_from_another_process():
    with SelectServer() as server:
        result = throughput(server, clients=4, seconds=0.05, size=32, warmup=0.01, trials=2)
    assert isinstance(result, Throughput) and result.ok, result.errors
    assert result.messages > 0 and result.messages_per_second > 0
    assert len(result.spread.trials) == 2
    assert within(result.messages_per_second, result.spread.low, result.spread.high)
    assert result.clients_served == 4
    assert result.cpu >= 0 and result.median_latency <= result.tail_latency
    assert result.tail_name in ("p99", "p90", "max")


def test_an_echo_load_checks_its_fields():
    load = EchoLoad()
    assert (load.clients, load.size, load.warmup, load.seconds) == (20, 64, 0.05, 0.2)
    assert load.duration == pytest.approx(0.25)
    for bad in (
        {"clients": 0},
        {"clients": 2.0},
        {"clients": True},
        {"size": 0},
        {"warmup": -0.1},
        {"warmup": math.nan},
        {"seconds": 0},
        {"connect_timeout": 0},
    ):
        name = next(iter(bad))
        with pytest.raises(ValueError, match=f"EchoLoad {name} must be"):
            EchoLoad(**bad)
        with pytest.raises(ValueError, match=f"EchoLoad {name} must be"):
            dataclasses.replace(load, **bad)  # a changed copy is checked again
    with pytest.raises(dataclasses.FrozenInstanceError):
        load.clients = 3  # type: ignore[misc]


def test_throughput_takes_an_echo_load_or_its_fields():
    with SelectServer() as server:
        result = throughput(server, EchoLoad(clients=2, seconds=0.02, warmup=0.0))
        assert result.ok and (result.clients, result.size) == (2, 64)
        result = throughput(server, EchoLoad(clients=2), size=16, seconds=0.02, warmup=0.0)
        assert result.ok and (result.clients, result.size) == (2, 16)
        with pytest.raises(ValueError, match="EchoLoad clients"):
            throughput(server, clients=0)
        with pytest.raises(TypeError):
            throughput(server, clients=2, rate=5)  # not a field of an EchoLoad


def test_throughput_of_an_address_has_no_cpu():
    with SelectServer() as server:
        result = throughput(server.address, clients=2, seconds=0.02, warmup=0.0)
    assert result.ok and math.isnan(result.cpu)


# ------------------------------------------------------------------------- idle
def test_idle_clients_connect_from_the_client_process_then_close():
    with SelectServer() as server:
        with idle_clients(server, clients=5) as held:
            assert held == HeldClients(opened=5, accepted=5)
            assert server.events.count(ACCEPT) == 5
        assert wait_until(lambda: server.events.count(EOF) == 5, 5)


def test_idle_clients_of_a_one_at_a_time_server():
    from nbio_helpers import BlockingServer

    with BlockingServer() as server:
        with idle_clients(server, clients=3, stall=0.05) as held:
            assert held.opened == 3 and held.accepted == 1  # the others wait in the backlog


def test_idle_cost_of_a_busy_poller():
    with PollingServer(interval=0) as server:
        cost = idle_cost(server, clients=3, seconds=0.05, repeat=2)
        assert server.events.count(ACCEPT) == 3
    assert isinstance(cost, IdleCost) and cost.windows == 2
    assert cost.clients == cost.opened == 3
    assert cost.cpu > 0 and cost.would_block_per_second > 0 and cost.rounds_per_second > 0
    assert cost.rest >= 0 and cost.seconds >= 0.1
    assert isinstance(cost.spread, Spread) and len(cost.spread.trials) == 2
    assert within(cost.cpu, cost.spread.low, cost.spread.high)
    assert cost.cpu_per_round == pytest.approx(cost.cpu / cost.rounds_per_second)
    assert cost.wakeups_per_second == cost.rounds_per_second
    assert not hasattr(cost, "cpu_share")  # one name: cpu


def test_idle_cost_retries_below_the_threshold_and_keeps_the_best():
    # A sleeping select server uses almost no CPU: every attempt is below 0.9, so all run.
    with SelectServer() as server:
        cost = idle_cost(server, clients=1, seconds=0.02, attempts=3, retry_below=0.9)
        assert server.events.count(ACCEPT) == 1  # the clients stay for every window
    assert cost.windows == 3
    assert cost.cpu < 0.9
    # select records a wake-up per return: idle, it counts 0 rounds, not "unknown".
    assert cost.would_block_per_second == 0 and cost.rounds_per_second == 0


def test_idle_cost_of_a_model_that_counts_no_rounds():
    with AsyncioServer() as server:
        cost = idle_cost(server, clients=2, seconds=0.02)
    assert math.isnan(cost.rounds_per_second) and cost.wakeups_per_second == 0
    assert math.isnan(cost.cpu_per_round)


def test_idle_cost_stops_retrying_once_enough():
    with SelectServer() as server:
        cost = idle_cost(server, clients=1, seconds=0.02, attempts=3, retry_below=0.0)
    assert cost.windows == 1


def test_idle_cost_checks_its_arguments():
    with SelectServer() as server:
        with pytest.raises(ValueError):
            idle_cost(server, attempts=0)
        with pytest.raises(ValueError):
            idle_cost(server, repeat=0)


def test_windows_over_a_sleeping_loop_start_on_a_round():
    with PollingServer(interval=0.005, record_events=False) as server:
        assert wait_until(lambda: loop_rounds(server) >= 3, 5)
        before = loop_rounds(server)
        assert next_round(server, 0.005) is True
        assert loop_rounds(server) > before
    with SelectServer(record_events=False) as server:  # goes round only when woken
        assert next_round(server, 0.01) is False


# --------------------------------------------------------------------------- sweep
def test_poll_interval_sweep_rows_and_cleanup():
    before = set(running_servers())
    results = poll_interval_sweep(
        [0, 0.01], seconds=0.06, requests=5, clients=2, repeat=2, trials=2
    )
    assert [r["interval"] for r in results] == [0, 0.01]
    for r in results:
        assert {
            "interval",
            "cpu",
            "cpu_low",
            "cpu_high",
            "median",
            "median_low",
            "median_high",
            "tail",
            "tail_name",
            "mean",
            "theory",
            "samples",
            "rounds_per_second",
            "period",
            "cpu_per_round",
            "cpu_per_round_low",
            "cpu_per_round_high",
            "cpu_theory",
        } <= set(r)
        assert r["theory"] == r["interval"] / 2
        assert r["samples"] == 10 and r["tail_name"] == "max"
        assert math.isnan(r["p99"])  # deprecated key: never the max
        assert r["rounds_per_second"] > 0
        assert r["period"] == pytest.approx(1 / r["rounds_per_second"])
        assert within(r["cpu"], r["cpu_low"], r["cpu_high"])
        assert r["median_low"] <= r["median"] <= r["median_high"]
        c = r["cpu_per_round"]
        assert r["cpu_theory"] == pytest.approx(c / (c + r["interval"]))
    assert set(running_servers()) == before


def test_poll_interval_sweep_with_another_server():
    made = []

    def make(interval):
        made.append(interval)
        return AsyncioServer()

    results = poll_interval_sweep(
        [0.002], seconds=0.02, requests=3, clients=1, repeat=1, trials=1, make_server=make
    )
    assert made == [0.002]
    assert math.isnan(results[0]["rounds_per_second"])  # asyncio records no rounds
    assert math.isnan(results[0]["cpu_theory"])


def test_auto_requests_fit_the_budget():
    assert auto_requests(0, 0.5) == 100
    assert auto_requests(0.01, 0.5) == 50
    assert auto_requests(0.01, 0.3, trials=3) == 10
    assert auto_requests(1.0, 0.5) == 5


# ---------------------------------------------------------------------------- plot
POINTS = [
    {
        "interval": 0,
        "cpu": 0.98,
        "cpu_low": 0.97,
        "cpu_high": 0.99,
        "median": 1e-4,
        "median_low": 0.9e-4,
        "median_high": 1.1e-4,
        "tail": 4e-4,
        "tail_name": "p90",
        "cpu_per_round": 2e-5,
        "cpu_theory": 1.0,
    },
    {
        "interval": 0.001,
        "cpu": 0.05,
        "median": 6e-4,
        "tail": 1.6e-3,
        "tail_name": "p90",
        "cpu_per_round": 5e-5,
        "cpu_theory": 5e-5 / 1.05e-3,
    },
    {
        "interval": 0.01,
        "cpu": 0.0,
        "median": 5e-3,
        "tail": 1e-2,
        "tail_name": "max",
        "cpu_per_round": 1e-4,
        "cpu_theory": 1e-4 / 1.01e-2,
    },
    {"interval": 0.05, "cpu": math.nan, "median": math.nan},  # failed: skipped
]


def test_plot_tradeoff_draws_points_both_theories_and_the_fixed_cost_line():
    fig = plot_tradeoff(POINTS)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["0 (busy)", "1 ms", "10 ms"]
    assert ax.texts[0].get_horizontalalignment() == "left"  # busy: right of its dot
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("CPU = c / (c + interval)" in t for t in legend)
    assert any("c = 50 µs (as at 1 ms)" in t for t in legend)
    assert any("max/p90" in t for t in legend) and "one whole core" in legend
    theory = next(line for line in ax.get_lines() if "theory" in line.get_label())
    xs, ys = theory.get_data()
    assert list(xs) == [0.5, 5.0]  # latency: interval / 2
    assert ys[0] == pytest.approx(5e-5 / 1.05e-3)  # CPU: c / (c + interval)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_plot_tradeoff_of_old_style_points():
    fig = plot_tradeoff([{"interval": 0.001, "cpu": 0.03, "median": 6e-4, "theory": 5e-4}])
    assert [t.get_text() for t in fig.axes[0].texts] == ["1 ms"]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_plot_tradeoff_on_given_axes_and_empty():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert plot_tradeoff([], ax=ax) is fig
    plt.close(fig)


def test_spare_cores():
    import os

    spare = spare_cores(0.05)
    assert 0 <= spare <= os.cpu_count()


# ------------------------------------------------------------------- gc pauses
def test_gc_is_paused_while_measuring_and_restored_after():
    import gc

    from nbio_helpers.measure.quiet import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: one pause
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with gc_paused():
            raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()


def test_a_measurement_runs_with_gc_paused(monkeypatch):
    import gc

    from nbio_helpers.measure import process as process_module

    seen = []
    original = process_module.ClientProcess.request

    def spy(self, cmd, **args):
        seen.append((cmd, gc.isenabled()))
        return original(self, cmd, **args)

    monkeypatch.setattr(process_module.ClientProcess, "request", spy)
    with SelectServer() as server:
        latency_stats(server, requests=2)
        throughput(server, clients=1, seconds=0.01, warmup=0.0)
    assert ("latency", False) in seen and ("echo_load", False) in seen
    assert gc.isenabled()
