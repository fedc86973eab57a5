"""nbio_helpers.scaling: the cost of one wait with N idle sockets (structure only, no timings)."""
import os
import selectors

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from nbio_helpers import FD_SETSIZE  # noqa: E402
from nbio_helpers import scaling  # noqa: E402
from nbio_helpers.scaling import (ScalingResult, available_selectors, fd_limit,  # noqa: E402
                                  measure_scaling, plot_scaling, raise_fd_limit)

pytestmark = pytest.mark.timeout(60)


def open_fds() -> int | None:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None


def test_available_selectors_include_select_and_the_default():
    found = available_selectors()
    assert found["select"] is selectors.SelectSelector
    assert selectors.DefaultSelector in found.values()


def test_every_selector_is_measured_at_every_n():
    before = open_fds()
    result = measure_scaling([5, 50], budget_per_point=0.005)
    assert set(result.seconds) == set(available_selectors())
    for name, by_n in result.seconds.items():
        assert sorted(by_n) == [5, 50], name
        assert all(seconds > 0 for seconds in by_n.values())
    rows = result.table()
    assert len(rows) == 2 * len(result.seconds)
    assert {"selector", "n", "us_per_call"} == set(rows[0])
    assert result.growth("select") == result.seconds["select"][50] / result.seconds["select"][5]
    assert open_fds() == before   # every socket closed


def test_only_the_named_selectors():
    result = measure_scaling([5], names=["select"], budget_per_point=0.005)
    assert list(result.seconds) == ["select"]


@pytest.mark.skipif(os.name == "nt", reason="Windows limits select() by count, not by fd")
def test_select_stops_at_fd_setsize_and_ends_its_line_there():
    if (raise_fd_limit(FD_SETSIZE + 400) or 0) < FD_SETSIZE + 300:
        pytest.skip("the descriptor limit cannot be raised past FD_SETSIZE here")
    result = measure_scaling([10, FD_SETSIZE + 50], names=["select", "poll"] if "poll" in
                             available_selectors() else ["select"], budget_per_point=0.005)
    assert "FD_SETSIZE" in result.skipped["select"][FD_SETSIZE + 50]
    ns = sorted(result.seconds["select"])
    assert ns[0] == 10 and 10 < ns[-1] < FD_SETSIZE   # measured once more, at its limit
    if "poll" in result.seconds:
        assert sorted(result.seconds["poll"]) == [10, FD_SETSIZE + 50]


def test_n_beyond_the_descriptor_limit_is_skipped(monkeypatch):
    monkeypatch.setattr(scaling, "raise_fd_limit", lambda wanted: 200)
    result = measure_scaling([10, 500], names=["select"], budget_per_point=0.005)
    assert sorted(result.seconds["select"]) == [10]
    assert "descriptor limit is 200" in result.skipped["select"][500]


def test_raise_fd_limit_never_lowers():
    soft = fd_limit()
    assert raise_fd_limit(1) == soft
    assert fd_limit() == soft


def test_plot_is_log_log():
    result = ScalingResult({"select": {10: 2e-6, 100: 9e-6}, "epoll": {10: 1e-6, 100: 1e-6}}, {})
    fig = plot_scaling(result)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")] \
        == ["select", "epoll"]
    import matplotlib.pyplot as plt
    plt.close(fig)
