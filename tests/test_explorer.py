"""The poll-interval explorer: a click measures in the background, adds a point, redraws,
stops its server; errors are shown in the widget; one measurement at a time."""

import threading

import matplotlib

matplotlib.use("Agg")

import pytest

from nbio_helpers import SelectServer, running_servers
from nbio_helpers.ui.explorer import PollIntervalExplorer

pytestmark = [pytest.mark.alone, pytest.mark.timeout(30)]


def fast_explorer(**options):
    return PollIntervalExplorer(clients=2, cpu_seconds=0.05, latency_seconds=0.3, **options)


def test_dom_classes_and_initial_state():
    explorer = fast_explorer()
    assert "nbio-poll-explorer" in explorer._dom_classes
    assert "nbio-explorer-slider" in explorer.slider._dom_classes
    assert "nbio-explorer-measure" in explorer.button._dom_classes
    assert "nbio-explorer-output" in explorer.output._dom_classes
    assert explorer.points == [] and not explorer.measuring
    assert explorer.interval == pytest.approx(0.001)  # 1 ms


def test_slider_is_in_milliseconds_and_busy_means_zero():
    explorer = fast_explorer()
    explorer.slider.value = 10
    assert explorer.interval == pytest.approx(0.01)
    explorer.busy.value = True
    assert explorer.interval == 0 and explorer.slider.disabled
    explorer.busy.value = False
    assert not explorer.slider.disabled


@pytest.mark.slow
def test_click_measures_in_the_background_and_adds_a_point():
    explorer = fast_explorer()
    explorer.slider.value = 2
    before = {t.name for t in threading.enumerate()}
    explorer.button.click()
    assert explorer.wait(timeout=20)
    assert len(explorer.points) == 1
    point = explorer.points[0]
    assert point["interval"] == pytest.approx(0.002) and point["samples"] > 0
    assert not explorer.button.disabled
    assert "png" in str(explorer.output.outputs[0]["data"].keys())
    assert "CPU" in explorer.status.value and "median" in explorer.status.value
    assert running_servers() == {}  # its server was stopped
    assert not [
        t for t in threading.enumerate() if t.name.startswith("nbio-") and t.name not in before
    ]


@pytest.mark.slow
def test_measure_busy_then_clear():
    explorer = fast_explorer()
    explorer.busy.value = True
    point = explorer.measure()
    assert point["interval"] == 0 and point["cpu"] > 0
    explorer.slider.value = 0.1
    explorer.busy.value = False
    explorer.measure()
    assert [p["interval"] for p in explorer.points] == [0, pytest.approx(0.0001)]
    explorer.clear()
    assert explorer.points == [] and explorer.output.outputs == ()


def test_one_measurement_at_a_time():
    release = threading.Event()

    def slow_server(interval):
        release.wait(10)
        return SelectServer()

    explorer = fast_explorer(make_server=slow_server)
    assert explorer.start_measure() is True
    assert explorer.button.disabled and explorer.measuring
    assert explorer.start_measure() is False  # a second click is ignored
    with pytest.raises(RuntimeError, match="already running"):
        explorer.measure()
    release.set()
    assert explorer.wait(timeout=20)
    assert len(explorer.points) == 1 and not explorer.button.disabled


def test_errors_are_shown_in_the_widget():
    def broken(interval):
        raise OSError("no more sockets")

    explorer = fast_explorer(make_server=broken)
    explorer.button.click()
    assert explorer.wait(timeout=10)
    assert "measurement failed" in explorer.status.value
    assert "no more sockets" in explorer.status.value
    assert explorer.points == [] and not explorer.button.disabled


REFERENCE = [
    {"interval": 0, "cpu": 0.97, "median": 1e-4, "p99": 3e-4, "theory": 0.0},
    {"interval": 0.001, "cpu": 0.04, "median": 5.5e-4, "p99": 1e-3, "theory": 5e-4},
]


@pytest.mark.slow
def test_reference_points_are_drawn_at_once_and_survive_clear():
    explorer = fast_explorer(reference=REFERENCE)
    assert explorer.points == [] and explorer.reference == REFERENCE
    assert "png" in str(explorer.output.outputs[0]["data"].keys())
    assert "sweep" in explorer.status.value
    explorer.slider.value = 2
    explorer.measure()
    assert len(explorer.points) == 1 and "1 point" in explorer.status.value
    explorer.clear()
    assert explorer.points == [] and len(explorer.output.outputs) == 1  # the sweep stays


def test_own_points_are_ringed_over_the_reference(monkeypatch):
    import matplotlib.figure

    drawn = []
    monkeypatch.setattr(
        matplotlib.figure.Figure, "savefig", lambda fig, *args, **kwargs: drawn.append(fig)
    )
    explorer = fast_explorer(reference=REFERENCE)
    explorer.points.append(
        {"interval": 0.005, "cpu": 0.01, "median": 2.6e-3, "p99": 5e-3, "theory": 2.5e-3}
    )
    explorer.redraw()
    ax = drawn[-1].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "your measurements" in legend
    assert [t.get_text() for t in ax.texts] == ["0 (busy)", "1 ms", "5 ms"]


def test_bound_covers_the_measurement():
    explorer = PollIntervalExplorer()
    # 0.3 s CPU window (three 100 ms rounds) + two rounds to align + 0.6 s latency + 0.3 s
    assert explorer.bound == pytest.approx(1.4)


@pytest.mark.slow
def test_the_status_names_the_tail_by_the_rule():
    explorer = fast_explorer()
    explorer.slider.value = 2
    point = explorer.measure()
    assert point["tail_name"] == "max"  # a few requests: no p90, no p99
    assert "max" in explorer.status.value and "p99" not in explorer.status.value
