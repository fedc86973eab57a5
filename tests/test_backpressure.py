"""nbio_helpers.lessons.backpressure: a client that never reads, against servers with and without a
high-water mark; the buffer size rebuilt from the event log."""

import matplotlib

matplotlib.use("Agg")

import pytest

from nbio_helpers.events import PAUSE, RECV, RESUME, SEND, Event
from nbio_helpers.lessons.backpressure import (
    BufferSeries,
    Flooder,
    buffer_series,
    level_at,
    plot_backpressure,
    plot_buffer,
)
from nbio_helpers.server import wait_until

pytestmark = pytest.mark.timeout(60)

HIGH_WATER = 128 * 1024
LOW_WATER = HIGH_WATER // 4  # the servers' default low-water mark (asyncio's rule)
FLOOD = 4 * 1024 * 1024


def assert_paused_at_the_marks(marks, recv_size):
    """PAUSE above the high-water mark, RESUME at the low-water mark (a quarter of it) or
    below, alternating, and paused at the end (the client reads nothing yet).

    How many PAUSE/RESUME rounds come before that is up to the kernel, so it is not asserted
    (it was, as exactly one, and failed 1 run in 6-12 on a loaded machine): a PAUSE can come
    while the kernel is still moving earlier replies from the server's send buffer to the
    client's receive buffer, and once they have moved, ``send()`` takes the whole output
    buffer: RESUME, the server reads again, and the next PAUSE comes when the kernel's
    buffers are really full. Each round needs room for at least three quarters of a
    high-water mark in the kernel's buffers, so there are few; the buffer never passes the
    mark by more than one ``recv()``.
    """
    kinds = [m.kind for m in marks]
    assert kinds and kinds == [PAUSE, RESUME] * (len(kinds) // 2) + [PAUSE], kinds
    for mark in marks:
        if mark.kind == PAUSE:
            assert HIGH_WATER < mark.nbytes <= HIGH_WATER + recv_size, mark
        else:
            assert mark.nbytes <= LOW_WATER, mark


def test_the_pause_check_accepts_rounds_and_refuses_what_must_not_happen():
    def marks(*pairs):
        return [Event(float(i), kind, 1, n) for i, (kind, n) in enumerate(pairs)]

    over, under = HIGH_WATER + 1, LOW_WATER
    assert_paused_at_the_marks(marks((PAUSE, over)), 65536)
    assert_paused_at_the_marks(marks((PAUSE, over), (RESUME, 0), (PAUSE, over)), 65536)
    for wrong in (
        marks(),
        marks((PAUSE, over), (RESUME, 0)),  # not paused at the end
        marks((PAUSE, HIGH_WATER)),  # paused too early
        marks((PAUSE, HIGH_WATER + 65537)),  # read too much first
        marks((PAUSE, over), (RESUME, under + 1), (PAUSE, over)),  # resumed too soon
        marks((PAUSE, over), (PAUSE, over)),
    ):  # two pauses in a row
        with pytest.raises(AssertionError):
            assert_paused_at_the_marks(wrong, 65536)


@pytest.mark.parametrize("model", ["polling", "select", "selectors"])
def test_a_client_that_never_reads_is_held_back(make_server, model):
    server = make_server(model, high_water=HIGH_WATER, sock_buffer_size=64 * 1024)
    with Flooder(server.address) as flooder:
        flooder.flood(total=FLOOD, seconds=10)
        assert flooder.stalled and flooder.sent < FLOOD
        held = buffer_series(server.events)
        assert_paused_at_the_marks(server.events.events((PAUSE, RESUME)), server.recv_size)
        assert HIGH_WATER < held.peak <= HIGH_WATER + server.recv_size
        assert flooder.reading_from is None
        flooder.drain(seconds=10)
        assert flooder.reading_from is not None
        assert flooder.received == flooder.sent and flooder.echo_ok
    assert server.events.count(RESUME) >= 1
    # The server records a send just after the client may have read it: wait for the record.
    assert wait_until(lambda: buffer_series(server.events).size[-1] == 0, timeout=5)


def test_without_backpressure_the_buffer_holds_everything(make_server):
    server = make_server("selectors", high_water=2**40, sock_buffer_size=64 * 1024)
    with Flooder(server.address) as flooder:
        assert flooder.flood(total=FLOOD, seconds=10) == FLOOD
        assert not flooder.stalled
        flooder.drain(seconds=10)
        assert flooder.received == FLOOD and flooder.echo_ok
    assert server.events.count(PAUSE) == 0
    assert buffer_series(server.events).peak > 4 * HIGH_WATER


def test_buffer_series_from_known_events():
    events = [
        Event(10.0, RECV, 1, 100),
        Event(10.1, RECV, 2, 999),
        Event(10.2, PAUSE, 1, 100),
        Event(10.3, SEND, 1, 40),
        Event(10.4, RESUME, 1, 60),
        Event(10.5, SEND, 1, 60),
    ]
    series = buffer_series(events)
    assert series.size == [0, 100, 60, 0]
    assert series.t == pytest.approx([0.0, 0.0, 0.3, 0.5])
    assert series.pauses == pytest.approx([0.2]) and series.resumes == pytest.approx([0.4])
    assert series.peak == 100
    assert series.t0 == 10.0
    assert buffer_series(events, conn=2).size == [0, 999]
    assert buffer_series([]) == BufferSeries([], [], [], [])


def test_plot_buffer():
    series = BufferSeries([0.0, 0.1, 0.2], [0, 300_000, 0], [0.1], [0.15])
    fig = plot_buffer(series, high_water=256 * 1024)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["output buffer", "high-water mark", "PAUSE (stop reading)", "RESUME"]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_plot_buffer_shades_the_time_before_reading_and_shares_its_y_axis():
    import matplotlib.pyplot as plt

    small = BufferSeries([0.0, 0.1, 0.2], [0, 100 * 1024, 0], [], [], t0=50.0)
    big = BufferSeries([0.0, 0.1, 0.2], [0, 4096 * 1024, 0], [], [], t0=80.0)
    fig, (left, right) = plt.subplots(1, 2, sharey=True)
    plot_buffer(small, 64 * 1024, ax=left, reading_from=50.15)
    plot_buffer(big, None, ax=right)
    assert left.get_legend_handles_labels()[1][0] == "client reads nothing"
    span = left.patches[0]  # x in ms (data), y in axes fraction
    xs = span.get_patch_transform().transform(span.get_path().vertices)[:, 0]
    assert min(xs) == pytest.approx(0) and max(xs) == pytest.approx(150)
    assert left.get_ylim()[0] == 0 and left.get_ylim()[1] >= 4096  # the big one fits too
    plt.close(fig)


def test_level_at_is_the_size_just_after_a_time():
    series = BufferSeries([0.0, 0.1, 0.2], [0, 300, 100], [0.1], [0.2])
    assert [level_at(series, t) for t in (0.0, 0.05, 0.1, 0.15, 0.2, 9.0)] == [
        0,
        0,
        300,
        300,
        100,
        100,
    ]
    assert level_at(BufferSeries([], [], [], []), 1.0) == 0


def test_plot_backpressure_zooms_on_the_pause_and_the_drain():
    import matplotlib.pyplot as plt

    mark = 256 * 1024
    # Fills to past the mark in 2 ms (PAUSE), waits, the client reads at 300 ms, RESUME at
    # 301 ms at the low-water mark, empty at 302 ms.
    held = BufferSeries(
        [0.0, 0.001, 0.002, 0.301, 0.302],
        [0, 100_000, 300_000, 100_000, 0],
        [0.002],
        [0.301],
        t0=10.0,
    )
    free = BufferSeries([0.0, 0.01, 0.02], [0, 4 * 2**20, 0], [], [], t0=20.0)
    fig = plot_backpressure(held, free, mark, held_reading_from=10.3, free_reading_from=20.01)
    start, end, without = fig.axes
    assert start.get_shared_y_axes().joined(start, end)
    assert not start.get_shared_y_axes().joined(start, without)
    assert start.get_xlim()[0] == 0 and 2 < start.get_xlim()[1] < 300  # the start only
    assert 250 < end.get_xlim()[0] < 300 < 302 < end.get_xlim()[1]  # the end only
    assert start.get_ylim()[1] < 1000  # KiB, not MiB
    assert without.get_ylim()[1] >= 4 and "MiB" in without.get_ylabel()
    for ax in (start, end):
        pauses = [line for line in ax.lines if line.get_marker() == "v"]
        resumes = [line for line in ax.lines if line.get_marker() == "^"]
        assert [tuple(p.get_xydata()[0]) for p in pauses] == [(2.0, 300_000 / 1024)]
        assert [tuple(r.get_xydata()[0]) for r in resumes] == [(301.0, 100_000 / 1024)]
        levels = sorted(
            line.get_ydata()[0] for line in ax.lines if line.get_linestyle() in ("--", ":")
        )
        assert levels == [mark / 4096, mark / 1024]  # the low-water mark (a quarter), the mark
    plt.close(fig)


def test_plot_backpressure_with_nothing_measured_still_draws():
    import matplotlib.pyplot as plt

    empty = BufferSeries([], [], [], [])
    fig = plot_backpressure(empty, empty, 1024)
    assert len(fig.axes) == 3
    plt.close(fig)
