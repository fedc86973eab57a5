"""nbio_helpers.measure.scaling: the cost of one wait with N idle sockets (structure only, no
timings; the slopes are asserted in test_relations.py)."""

import os
import selectors

import matplotlib

matplotlib.use("Agg")

import pytest

from nbio_helpers import FD_SETSIZE
from nbio_helpers.measure import scaling
from nbio_helpers.measure.scaling import (
    ScalingResult,
    available_selectors,
    fd_limit,
    fit_slope,
    measure_scaling,
    plot_scaling,
    raise_fd_limit,
)

pytestmark = [pytest.mark.alone, pytest.mark.timeout(60)]


def open_fds() -> int | None:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None


def test_available_selectors_include_select_and_the_default():
    found = available_selectors()
    assert found["select"] is selectors.SelectSelector
    assert selectors.DefaultSelector in found.values()


@pytest.mark.parametrize("wait", [True, False])
def test_every_selector_is_measured_at_every_n(wait):
    before = open_fds()
    result = measure_scaling([5, 50], budget_per_point=0.005, trials=2, wait=wait)
    assert set(result.seconds) == set(available_selectors()) == set(result.floor)
    assert result.wait is wait
    for name, by_n in result.seconds.items():
        assert sorted(by_n) == [5, 50], name
        assert all(seconds > 0 for seconds in by_n.values())
        assert all(lo <= by_n[n] <= hi for n, (lo, hi) in result.spread[name].items())
        assert result.floor[name] > 0 and result.per_socket(name) == pytest.approx(
            (by_n[50] - result.floor[name]) / 50
        )
    rows = result.table()
    assert len(rows) == 2 * len(result.seconds)
    assert {"selector", "n", "us_per_call"} == set(rows[0])
    assert result.growth("select") == result.seconds["select"][50] / result.seconds["select"][5]
    assert open_fds() == before  # every socket closed


def test_only_the_named_selectors():
    result = measure_scaling([5], names=["select"], budget_per_point=0.005)
    assert list(result.seconds) == ["select"]


@pytest.mark.skipif(os.name == "nt", reason="Windows limits select() by count, not by fd")
def test_select_stops_at_fd_setsize_and_ends_its_line_there():
    if (raise_fd_limit(FD_SETSIZE + 400) or 0) < FD_SETSIZE + 300:
        pytest.skip("the descriptor limit cannot be raised past FD_SETSIZE here")
    result = measure_scaling(
        [10, FD_SETSIZE + 50],
        names=["select", "poll"] if "poll" in available_selectors() else ["select"],
        budget_per_point=0.005,
    )
    assert "descriptor 1024 reached" in result.skipped["select"][FD_SETSIZE + 50]
    ns = sorted(result.seconds["select"])
    assert ns[0] == 10 and 10 < ns[-1] < FD_SETSIZE  # measured once more, at its limit
    assert result.select_limit == ns[-1]
    if "poll" in result.seconds:
        assert sorted(result.seconds["poll"]) == [10, FD_SETSIZE + 50]


def test_n_beyond_the_descriptor_limit_is_skipped(monkeypatch):
    monkeypatch.setattr(scaling, "raise_fd_limit", lambda wanted: 200)
    result = measure_scaling([10, 500], names=["select"], budget_per_point=0.005)
    assert sorted(result.seconds["select"]) == [10]
    assert "descriptor limit is 200" in result.skipped["select"][500]


def test_the_ready_socket_is_reached_last():
    # select() scans descriptors in increasing order: the ready one must be the highest, or
    # the kernel stops registering (fs/select.c sets _qproc to NULL) before the idle ones.
    import socket

    a, b = socket.socketpair()
    idle = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(5)]
    try:
        highest = max(s.fileno() for s in idle + [a, b])
        ready = scaling.duplicate_above(a, highest)
        if os.name != "nt":
            assert ready.fileno() > highest
        ready.close()
    finally:
        for s in idle + [a, b]:
            s.close()


def test_fit_slope():
    linear = {n: n * 1e-8 for n in (100, 300, 1000, 3000)}
    flat = dict.fromkeys((100, 300, 1000, 3000), 1e-06)
    assert fit_slope(linear) == pytest.approx(1.0)
    assert fit_slope(flat) == pytest.approx(0.0)
    assert fit_slope({10: 1e-6, 30: 3e-6}) == pytest.approx(1.0)  # smaller N taken in
    assert fit_slope({10: 1e-6}) != fit_slope({10: 1e-6})  # nan: one point
    # select stops near descriptor 1024: 1000 and 1012 alone would give any slope at all.
    near = {10: 1e-7, 100: 1e-6, 1000: 1e-5, 1012: 1.3e-5}
    assert 0.9 < fit_slope(near) < 1.2
    result = ScalingResult({"poll": linear, "epoll": flat}, {})
    assert result.slopes() == {"poll": pytest.approx(1.0), "epoll": pytest.approx(0.0)}


def test_raise_fd_limit_never_lowers():
    soft = fd_limit()
    assert raise_fd_limit(1) == soft
    assert fd_limit() == soft


def test_plot_is_log_log():
    result = ScalingResult({"select": {10: 2e-6, 100: 9e-6}, "epoll": {10: 1e-6, 100: 1e-6}}, {})
    fig = plot_scaling(result)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "select (slope 0.65)",
        "epoll (slope 0.00)",
    ]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_plot_shows_slopes_floors_and_descriptor_1024():
    result = ScalingResult(
        {"select": {300: 3e-5, 1000: 1e-4}, "epoll": {300: 1e-6, 1000: 1e-6}},
        {},
        spread={"select": {300: (2.9e-5, 3.1e-5), 1000: (1e-4, 1e-4)}},
        floor={"select": 2e-6, "epoll": 1e-6},
        select_limit=1000,
    )
    fig = plot_scaling(result)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(legend) == [
        "epoll (slope 0.00)",
        "floor: N = 0, the call itself",
        "select (slope 1.00)",
    ]
    assert any("descriptor 1024" in t.get_text() for t in ax.texts)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_the_thread_cpu_clock_is_used_where_it_is_fine():
    # Linux and macOS count a thread's CPU time in fine steps: the registering wait's cost
    # is its CPU time there, not the wall time a loaded machine stretches.
    result = measure_scaling([5], names=["select"], budget_per_point=0.005, trials=1)
    expected = "thread_time" if scaling.thread_clock_is_fine() else "perf_counter"
    assert result.clock == expected
    if os.name == "posix":
        assert result.clock == "thread_time"


def test_a_coarse_thread_clock_falls_back_to_wall_time(monkeypatch):
    # Windows advances thread_time() by scheduler ticks (~15 ms): useless for µs calls.
    ticks = iter(range(10**9))
    monkeypatch.setattr(scaling.time, "thread_time", lambda: next(ticks) // 1000 * 0.0156)
    assert not scaling.thread_clock_is_fine()
    result = measure_scaling([5], names=["select"], budget_per_point=0.005, trials=1)
    assert result.clock == "perf_counter"
    assert result.seconds["select"][5] > 0


def test_the_clock_can_be_chosen_and_a_wrong_one_is_refused():
    result = measure_scaling(
        [5], names=["select"], budget_per_point=0.005, trials=1, clock="perf_counter"
    )
    assert result.clock == "perf_counter"
    with pytest.raises(ValueError, match="clock must be"):
        measure_scaling([5], names=["select"], clock="time")


def test_plot_says_cpu_time_when_cpu_time_was_measured():
    import matplotlib.pyplot as plt

    cpu = ScalingResult({"epoll": {10: 1e-6, 100: 1e-6}}, {})
    wall = ScalingResult({"epoll": {10: 1e-6, 100: 1e-6}}, {}, clock="perf_counter")
    fig_cpu, fig_wall = plot_scaling(cpu), plot_scaling(wall)
    assert "µs of CPU per call" in fig_cpu.axes[0].get_ylabel()
    assert "CPU" not in fig_wall.axes[0].get_ylabel()
    plt.close(fig_cpu)
    plt.close(fig_wall)
