"""nbio_helpers.measure: CPU share, latency, sweep, throughput, trade-off plot."""
import math
import socket
import threading

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from nbio_helpers import PollingServer, SelectServer, running_servers  # noqa: E402
from nbio_helpers.clients import LoadResult  # noqa: E402
from nbio_helpers.events import ACCEPT, EOF  # noqa: E402
from nbio_helpers.measure import (IdleCost, LatencyStats, _auto_requests,  # noqa: E402
                                  idle_clients, idle_cost, idle_cpu_share, latency_stats,
                                  plot_tradeoff, poll_interval_sweep, throughput)
from nbio_helpers.server import wait_until  # noqa: E402

pytestmark = pytest.mark.timeout(30)


def test_latency_stats_summary():
    stats = LatencyStats.from_samples([0.003, 0.001, 0.002], requested=5)
    assert stats.median == 0.002
    assert stats.p99 == 0.003
    assert stats.mean == pytest.approx(0.002)
    assert stats.count == 3 and stats.requested == 5
    assert stats.ms() == {"median_ms": 2.0, "p99_ms": 3.0, "mean_ms": 2.0, "count": 3}


def test_latency_stats_of_nothing_is_nan():
    stats = LatencyStats.from_samples([])
    assert math.isnan(stats.median) and math.isnan(stats.p99) and stats.count == 0


def test_latency_stats_measures_every_request():
    with SelectServer() as server:
        stats = latency_stats(server.address, requests=20, size=100, spacing=(0, 0.001))
    assert stats.count == 20 and stats.requested == 20
    assert all(s > 0 for s in stats.samples)
    assert stats.median <= stats.p99


def test_latency_stats_is_bounded_by_its_timeout():
    # A listener that never accepts: the connection completes in the backlog, no reply ever.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        with pytest.raises(TimeoutError):
            latency_stats(silent.getsockname(), requests=3, timeout=0.3)


def test_latency_stats_rejects_a_wrong_echo():
    # A server that echoes unchanged (not upper-cased).
    listener = socket.create_server(("127.0.0.1", 0))

    def parrot():
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


def test_latency_pauses_are_deterministic_per_seed():
    with SelectServer() as server:
        a = latency_stats(server.address, requests=3, spacing=(0, 0.001), seed=1)
        b = latency_stats(server.address, requests=3, spacing=(0, 0.001), seed=1)
    assert a.count == b.count == 3


def test_idle_clients_connect_then_close():
    with SelectServer() as server:
        with idle_clients(server, clients=5) as socks:
            assert len(socks) == 5
            assert server.events.count(ACCEPT) == 5
        assert all(s.fileno() == -1 for s in socks)
        assert wait_until(lambda: server.events.count(EOF) == 5, 5)


def test_idle_cpu_share_returns_a_share_of_a_core():
    with PollingServer(interval=0) as server:
        share = idle_cpu_share(server, clients=3, seconds=0.1)
    assert share > 0  # a busy loop certainly uses some CPU (the notebook asserts > 0.8)


def test_idle_cost_of_a_busy_poller():
    with PollingServer(interval=0) as server:
        cost = idle_cost(server, clients=3, seconds=0.1)
        assert server.events.count(ACCEPT) == 3
    assert isinstance(cost, IdleCost) and cost.windows == 1
    assert cost.cpu > 0 and cost.would_block_per_second > 0 and cost.rounds_per_second > 0
    assert cost.rest >= 0 and cost.seconds >= 0.1


def test_idle_cost_retries_below_the_threshold_and_keeps_the_best():
    # A sleeping select server uses almost no CPU: every window is below 0.9, so all run.
    with SelectServer() as server:
        cost = idle_cost(server, clients=1, seconds=0.02, attempts=3, retry_below=0.9)
        assert server.events.count(ACCEPT) == 1        # the clients stay for every window
    assert cost.windows == 3
    assert cost.cpu < 0.9
    assert cost.would_block_per_second == 0 and math.isnan(cost.rounds_per_second)


def test_idle_cost_stops_retrying_once_enough():
    with SelectServer() as server:
        cost = idle_cost(server, clients=1, seconds=0.02, attempts=3, retry_below=0.0)
    assert cost.windows == 1


def test_idle_cost_checks_its_arguments():
    with SelectServer() as server:
        with pytest.raises(ValueError):
            idle_cost(server, attempts=0)


def test_poll_interval_sweep_rows_and_cleanup():
    before = set(running_servers())
    results = poll_interval_sweep([0, 0.01], seconds=0.05, requests=5, clients=2)
    assert [r["interval"] for r in results] == [0, 0.01]
    for r in results:
        assert {"interval", "cpu", "median", "p99", "mean", "theory", "samples",
                "rounds_per_second", "cpu_per_round"} <= set(r)
        assert r["theory"] == r["interval"] / 2
        assert r["samples"] == 5
        assert r["rounds_per_second"] > 0
    assert set(running_servers()) == before


def test_poll_interval_sweep_with_another_server():
    made = []

    def make(interval):
        made.append(interval)
        return SelectServer()

    results = poll_interval_sweep([0.002], seconds=0.02, requests=3, clients=1, make_server=make)
    assert made == [0.002]
    assert math.isnan(results[0]["rounds_per_second"])  # select records no polling rounds


def test_auto_requests_fit_the_budget():
    assert _auto_requests(0, 0.5) == 100
    assert _auto_requests(0.01, 0.5) == 50
    assert _auto_requests(1.0, 0.5) == 10


def test_throughput_wraps_run_load():
    with SelectServer() as server:
        result = throughput(server.address, clients=4, messages=5, size=32)
    assert isinstance(result, LoadResult)
    assert result.ok and result.completed == 20


def test_plot_tradeoff_draws_points_and_theory():
    results = [
        {"interval": 0, "cpu": 0.98, "median": 1e-4, "p99": 4e-4, "theory": 0.0},
        {"interval": 0.001, "cpu": 0.03, "median": 6e-4, "p99": 1.6e-3, "theory": 5e-4},
        {"interval": 0.01, "cpu": 0.0, "median": 5e-3, "p99": 1e-2, "theory": 5e-3},
        {"interval": 0.05, "cpu": math.nan, "median": math.nan},  # failed: skipped
    ]
    fig = plot_tradeoff(results)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["0 (busy)", "1 ms", "10 ms"]
    assert ax.texts[0].get_horizontalalignment() == "left"    # busy: right of its dot
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("theory" in t for t in legend) and "one whole core" in legend
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_plot_tradeoff_on_given_axes_and_empty():
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    assert plot_tradeoff([], ax=ax) is fig
    plt.close(fig)
