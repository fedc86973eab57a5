"""plot_timeline draws known event logs with the expected artists (Agg, no display)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from nbio_helpers import EventLog  # noqa: E402
from nbio_helpers.events import (ACCEPT, ACCEPT_WOULD_BLOCK, EOF, ERROR, RECV,  # noqa: E402
                                 RECV_CALL, SEND, WOULD_BLOCK, Event)
from nbio_helpers.plots import GIDS, plot_timeline  # noqa: E402

T = 100.0   # an arbitrary time.monotonic() origin


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def artist(fig, gid):
    """The one artist of ``fig`` with ``gid`` (fails if there are several)."""
    found = [a for a in fig.axes[0].get_children() if a.get_gid() == gid]
    assert len(found) <= 1, f"{len(found)} artists with gid {gid}"
    return found[0] if found else None


def rects(collection):
    """(x, width, y-centre) of each bar of a PolyCollection, in data units."""
    out = []
    for path in collection.get_paths():
        xs, ys = path.vertices[:, 0], path.vertices[:, 1]
        out.append((round(xs.min(), 6), round(xs.max() - xs.min(), 6), round((ys.min() + ys.max()) / 2, 6)))
    return out


def blocking_read(conn="A", start=0.0, wait=0.050, t=T):
    return [Event(t + start, RECV_CALL, conn), Event(t + start + wait, RECV, conn, 5)]


def test_a_blocking_recv_shows_both_phases_and_the_blocked_call():
    fig = plot_timeline(blocking_read(), title="a blocking recv()", copy_width=1.0)
    ax = fig.axes[0]
    assert ax.get_title() == "a blocking recv()"
    assert ax.get_xlabel() == "time (ms)"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["application", "kernel"]
    # kernel row (y=1): wait for data 0..49 ms, then the copy 49..50 ms
    assert rects(artist(fig, GIDS["wait"])) == [(0.0, 49.0, 1.0)]
    assert rects(artist(fig, GIDS["copy"])) == [(49.0, 1.0, 1.0)]
    # application row (y=0): blocked for the whole call
    assert rects(artist(fig, GIDS["blocked"])) == [(0.0, 50.0, 0.0)]
    assert len(artist(fig, GIDS[RECV_CALL]).get_offsets()) == 1
    assert len(artist(fig, GIDS[RECV]).get_offsets()) == 1
    assert artist(fig, GIDS[WOULD_BLOCK]) is None
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "kernel: wait for data" in legend and "kernel: copy data to user" in legend


def test_thousands_of_blocking_io_errors_are_one_collection():
    events = []
    for i in range(5000):
        events += [Event(T + i * 1e-5, RECV_CALL, "A"), Event(T + i * 1e-5 + 2e-6, WOULD_BLOCK, "A")]
    events += [Event(T + 0.06, RECV_CALL, "A"), Event(T + 0.0601, RECV, "A", 5)]
    fig = plot_timeline(events)
    ticks = artist(fig, GIDS[WOULD_BLOCK])
    assert len(ticks.get_segments()) == 5000
    assert len(artist(fig, GIDS[RECV_CALL]).get_offsets()) == 5001
    # The kernel waited from the first attempt until the data came: one span.
    (wait,) = rects(artist(fig, GIDS["wait"]))
    assert wait[0] == 0.0 and 59.0 < wait[1] < 60.1
    # A bounded number of artists, whatever the number of events.
    assert len(fig.axes[0].collections) <= len(GIDS)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "recv(): BlockingIOError (x5000)" in legend


def test_two_clients_get_one_lane_each():
    events = sorted(blocking_read("A", 0.0, 0.05) + blocking_read("B", 0.001, 0.099),
                    key=lambda e: e.t)
    fig = plot_timeline(events, labels={"A": "client A"})
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["client A: application", "client A: kernel",
                      "B: application", "B: kernel"]
    waits = rects(artist(fig, GIDS["wait"]))
    assert [y for _, _, y in waits] == [1.0, 3.0]
    assert waits[1][1] > waits[0][1]          # B waited longer
    assert len(rects(artist(fig, GIDS["blocked"]))) == 2


def test_server_side_log_without_traced_calls():
    events = [Event(T, ACCEPT, 1), Event(T + 0.01, RECV, 1, 3), Event(T + 0.011, SEND, 1, 3),
              Event(T + 0.02, EOF, 1), Event(T + 0.001, ACCEPT_WOULD_BLOCK),
              Event(T + 0.002, ACCEPT_WOULD_BLOCK)]
    fig = plot_timeline(events, copy_width=0.5)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["application", "kernel", "server loop"]
    # waits: accept -> data (minus the copy), then send -> EOF; nothing "blocked" is claimed
    assert rects(artist(fig, GIDS["wait"])) == [(0.0, 9.5, 1.0), (11.0, 9.0, 1.0)]
    assert artist(fig, GIDS["blocked"]) is None
    assert len(artist(fig, GIDS[ACCEPT_WOULD_BLOCK]).get_segments()) == 2
    assert len(artist(fig, GIDS[EOF]).get_offsets()) == 1


def test_a_timed_out_recv_waits_without_copy():
    events = [Event(T, RECV_CALL, "A"), Event(T + 0.1, ERROR, "A", detail="timeout")]
    fig = plot_timeline(events)
    assert rects(artist(fig, GIDS["wait"])) == [(0.0, 100.0, 1.0)]
    assert artist(fig, GIDS["copy"]) is None
    assert len(artist(fig, GIDS[ERROR]).get_offsets()) == 1


def test_into_a_given_axes_with_t0_and_an_eventlog():
    log = EventLog()
    log.record(RECV_CALL, "A")
    log.record(RECV, "A", 4)
    first = log.events()[0].t
    fig, (ax1, ax2) = plt.subplots(2)
    result = plot_timeline(log, ax=ax2, t0=first - 0.5, legend=False)
    assert result is fig
    assert not ax1.collections and ax2.collections
    assert ax2.get_legend() is None
    x = artist_in(ax2, GIDS[RECV_CALL]).get_offsets()[0][0]
    assert x == pytest.approx(500.0)           # ms after t0
    assert ax2.get_xlim()[0] <= 0.0


def artist_in(ax, gid):
    return next(a for a in ax.get_children() if a.get_gid() == gid)


def test_lanes_selects_and_orders_connections():
    events = sorted(blocking_read("A") + blocking_read("B", 0.01), key=lambda e: e.t)
    fig = plot_timeline(events, lanes=["B"])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["application", "kernel"]
    assert len(rects(artist(fig, GIDS["wait"]))) == 1


def test_an_empty_log_still_makes_a_figure():
    fig = plot_timeline([], title="nothing yet")
    assert fig.axes[0].get_title() == "nothing yet"
    fig.canvas.draw()
