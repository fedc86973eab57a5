"""nbio_helpers.measure.comparison: the one comparison (structure only, no timed assertions)."""

import math

import matplotlib

matplotlib.use("Agg")

import pytest

from nbio_helpers import running_servers
from nbio_helpers.measure import (
    PARTS,
    ComparisonRow,
    compare,
    comparison_models,
    comparison_table,
    plot_comparison,
)
from nbio_helpers.models import MODELS, SelectServer


def within(value, low, high) -> bool:
    """``low <= value <= high``, give or take rounding (a ratio of totals against the ratios
    of its parts)."""
    slack = 1e-9 * max(abs(low), abs(high))
    return low - slack <= value <= high + slack


pytestmark = [pytest.mark.alone, pytest.mark.timeout(60)]


def test_every_model_with_the_polling_variants():
    specs = comparison_models()
    labels = [label for label, _, _ in specs]
    assert labels[:2] == ["blocking", "threads"]
    assert ("polling (busy)", "polling", {"interval": 0}) in specs
    assert ("polling (10 ms sleep)", "polling", {"interval": 0.01}) in specs
    assert {model for _, model, _ in specs} == set(MODELS)


def test_a_model_added_to_models_joins_by_itself(monkeypatch):
    class TasksServer(SelectServer):
        model = "tasks"

    monkeypatch.setitem(MODELS, "tasks", TasksServer)
    assert comparison_models()[-1] == ("tasks", "tasks", {})
    rows = compare(
        parts=("idle",),
        idle_clients=1,
        idle_seconds=0.01,
        idle_repeat=1,
        models=[spec for spec in comparison_models() if spec[1] == "tasks"],
    )
    assert rows[0].label == "tasks" and rows[0].idle_clients == 1


def test_only_the_parts_asked_for():
    rows = compare(["select"], parts=("latency",), requests=3, trials=2)
    row = rows[0]
    assert row.latency_samples == 6 and row.median_latency > 0
    assert math.isnan(row.idle_cpu) and math.isnan(row.throughput) and row.tried == 0
    assert row.median_range[0] <= row.median_latency <= row.median_range[1]
    with pytest.raises(ValueError, match="unknown part"):
        compare(["select"], parts=("speed",))


def test_bad_idle_windows_get_a_clear_error():
    with pytest.raises(ValueError, match="repeat must be >= 1"):
        compare(["select"], parts=("idle",), idle_clients=1, idle_repeat=0)
    with pytest.raises(ValueError, match="EchoLoad clients"):
        compare(["select"], parts=("load",), load_clients=0)


@pytest.mark.slow
def test_every_part_on_a_small_run():
    before = set(running_servers())
    rows = compare(
        [("sleepy", "polling", {"interval": 0.005}), "selectors"],
        parts=PARTS,
        idle_clients=2,
        idle_seconds=0.03,
        idle_repeat=2,
        requests=4,
        trials=2,
        load_clients=3,
        load_seconds=0.03,
        load_trials=2,
        connections=20,
    )
    assert set(running_servers()) == before  # every server stopped
    sleepy, sel = rows
    for row in rows:
        assert isinstance(row, ComparisonRow) and row.load_ok
        assert within(row.idle_cpu, *row.idle_cpu_range)
        assert within(row.throughput, *row.throughput_range)
        assert row.loaded_cpu >= 0 and row.idle_clients == 2 and row.latency_samples == 8
        assert row.max_connections == row.tried == 20
        assert row.as_dict()["label"] == row.label
    assert sleepy.idle_wakeups > 0 and sel.idle_wakeups == 0  # counted, not "unknown"


def _rows():
    return [
        ComparisonRow(
            "busy",
            "polling",
            {"interval": 0},
            idle_cpu=0.99,
            idle_cpu_range=(0.98, 1.0),
            idle_wakeups=50_000,
            idle_clients=20,
            median_latency=5e-5,
            median_range=(4e-5, 6e-5),
            tail_latency=9e-5,
            tail_name="p90",
            latency_samples=102,
            throughput=50_000,
            throughput_range=(48_000, 52_000),
            loaded_cpu=1.0,
            loaded_cpu_range=(0.9, 1.0),
            max_connections=1050,
            tried=1050,
        ),
        ComparisonRow(
            "select",
            "select",
            {},
            idle_cpu=0.0,
            idle_cpu_range=(0.0, 0.0),
            idle_wakeups=0,
            median_latency=6e-5,
            median_range=(5e-5, 7e-5),
            tail_latency=1e-4,
            tail_name="p90",
            throughput=40_000,
            throughput_range=(39_000, 41_000),
            loaded_cpu=0.5,
            loaded_cpu_range=(0.5, 0.5),
            max_connections=1013,
            tried=1050,
        ),
    ]


def test_table():
    lines = comparison_table(_rows()).splitlines()
    assert lines[0].split()[-3:] == ["p90", "msg/s", "connections"]
    assert "0.05 ms (0.04-0.06)" in lines[2] and "50,000 (48,000-52,000)" in lines[2]
    assert lines[2].endswith("1050/1050") and lines[3].endswith("1013/1050")
    assert "99%" in lines[2] and "<0.1%" in lines[3]
    mixed = _rows()
    mixed[1].tail_name = "max"
    assert "max 0.1 ms" in comparison_table(mixed)  # names differ: per cell
    assert (
        comparison_table([ComparisonRow("x", "select", {})]).splitlines()[2].split()[1:]
        == ["-"] * 7
    )  # nothing measured


@pytest.mark.slow
def test_plot_is_dots_with_whiskers_on_log_axes_with_values():
    fig = plot_comparison(_rows(), title="t")
    assert len(fig.axes) == 4  # CPU, latency, throughput, conns
    for ax in fig.axes:
        assert ax.get_xscale() == "log"
        assert not ax.patches  # no bars
        assert ax.containers  # error bars: dots with whiskers
    assert "50,000" in [t.get_text() for t in fig.axes[2].texts]
    assert "p90" in fig.axes[1].get_xlabel()
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_plot_of_fewer_parts():
    rows = [
        ComparisonRow(
            "select",
            "select",
            {},
            median_latency=6e-5,
            median_range=(5e-5, 7e-5),
            tail_latency=1e-4,
            tail_name="max",
        )
    ]
    fig = plot_comparison(rows)
    assert len(fig.axes) == 1 and "max" in fig.axes[0].get_xlabel()
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_table_columns_never_touch():
    rows = _rows()
    rows[0].tail_latency, rows[0].throughput = 1.55e-3, 156_357
    rows[0].throughput_range = (150_000, 160_000)
    line = comparison_table(rows).splitlines()[2]
    assert "1.55 ms  156,357 (150,000-160,000)" in line  # was "1.55 ms156,357"
    assert len({len(row) for row in comparison_table(rows).splitlines()}) == 1


def test_plot_labels_connections_served_of_tried():
    fig = plot_comparison(_rows())
    labels = [t.get_text() for t in fig.axes[3].texts]
    assert labels == ["1,050/1,050", "1,013/1,050"]  # same spot on a log axis
    import matplotlib.pyplot as plt

    plt.close(fig)
