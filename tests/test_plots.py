"""plot_timeline draws known event logs with the expected artists (Agg, no display)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from nbio_helpers import EventLog
from nbio_helpers.events import (
    ACCEPT,
    ACCEPT_WOULD_BLOCK,
    EOF,
    ERROR,
    RECV,
    RECV_CALL,
    SEND,
    WOULD_BLOCK,
    Event,
)
from nbio_helpers.ui.plots import GIDS, plot_timeline

T = 100.0  # an arbitrary time.monotonic() origin


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
        out.append(
            (round(xs.min(), 6), round(xs.max() - xs.min(), 6), round((ys.min() + ys.max()) / 2, 6))
        )
    return out


def blocking_read(conn="A", start=0.0, wait=0.050, t=T):
    return [Event(t + start, RECV_CALL, conn), Event(t + start + wait, RECV, conn, 5)]


def test_a_blocking_recv_shows_both_phases_and_the_blocked_call():
    fig = plot_timeline(blocking_read(), title="a blocking recv()", copy_width=1.0)
    ax = fig.axes[0]
    assert ax.get_title() == "a blocking recv()"
    assert ax.get_xlabel() == "time (ms)"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["application", "kernel (inferred)"]
    # kernel row (y=1): wait for data 0..49 ms, then the copy 49..50 ms
    assert rects(artist(fig, GIDS["wait"])) == [(0.0, 49.0, 1.0)]
    assert rects(artist(fig, GIDS["copy"])) == [(49.0, 1.0, 1.0)]
    # application row (y=0): blocked for the whole call
    assert rects(artist(fig, GIDS["blocked"])) == [(0.0, 50.0, 0.0)]
    assert len(artist(fig, GIDS[RECV_CALL]).get_offsets()) == 1
    assert len(artist(fig, GIDS[RECV]).get_offsets()) == 1
    assert artist(fig, GIDS[WOULD_BLOCK]) is None
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "kernel: wait for data" in legend and "kernel: copy data to user (drawn wider)" in legend


def test_thousands_of_blocking_io_errors_are_one_collection():
    events = []
    for i in range(5000):
        events += [
            Event(T + i * 1e-5, RECV_CALL, "A"),
            Event(T + i * 1e-5 + 2e-6, WOULD_BLOCK, "A"),
        ]
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
    events = sorted(
        blocking_read("A", 0.0, 0.05) + blocking_read("B", 0.001, 0.099), key=lambda e: e.t
    )
    fig = plot_timeline(events, labels={"A": "client A"})
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [
        "client A: application",
        "client A: kernel (inferred)",
        "B: application",
        "B: kernel (inferred)",
    ]
    waits = rects(artist(fig, GIDS["wait"]))
    assert [y for _, _, y in waits] == [1.0, 3.0]
    assert waits[1][1] > waits[0][1]  # B waited longer
    assert len(rects(artist(fig, GIDS["blocked"]))) == 2


def test_server_side_log_without_traced_calls():
    events = [
        Event(T, ACCEPT, 1),
        Event(T + 0.01, RECV, 1, 3),
        Event(T + 0.011, SEND, 1, 3),
        Event(T + 0.02, EOF, 1),
        Event(T + 0.001, ACCEPT_WOULD_BLOCK),
        Event(T + 0.002, ACCEPT_WOULD_BLOCK),
    ]
    fig = plot_timeline(events, copy_width=0.5)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["application", "kernel (inferred)", "server loop"]
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
    assert x == pytest.approx(500.0)  # ms after t0
    assert ax2.get_xlim()[0] <= 0.0


def artist_in(ax, gid):
    return next(a for a in ax.get_children() if a.get_gid() == gid)


def test_lanes_selects_and_orders_connections():
    events = sorted(blocking_read("A") + blocking_read("B", 0.01), key=lambda e: e.t)
    fig = plot_timeline(events, lanes=["B"])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [
        "application",
        "kernel (inferred)",
    ]
    assert len(rects(artist(fig, GIDS["wait"]))) == 1


def test_an_empty_log_still_makes_a_figure():
    fig = plot_timeline([], title="nothing yet")
    assert fig.axes[0].get_title() == "nothing yet"
    fig.canvas.draw()


def test_with_ready_the_copy_never_starts_before_the_data_existed():
    events = blocking_read(wait=0.400)  # recv() called at 0, returned at 400 ms
    fig = plot_timeline(events, copy_width=2.0, ready={"A": [T + 0.39995]})  # sent at 399.95
    assert rects(artist(fig, GIDS["wait"])) == [(0.0, 399.95, 1.0)]
    (copy,) = rects(artist(fig, GIDS["copy"]))
    assert copy[0] == 399.95 and copy[1] == 2.0  # starts at the send; drawn 2 ms wide
    assert artist(fig, GIDS["buffered"]) is None
    assert rects(artist(fig, GIDS["blocked"])) == [(0.0, 400.0, 0.0)]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["application", "kernel (inferred)"]


def test_with_ready_a_late_retry_shows_data_waiting_in_the_buffer():
    events = []
    for i in range(15):  # attempts every 20 ms, all too early
        events += [
            Event(T + i * 0.02, RECV_CALL, "A"),
            Event(T + i * 0.02 + 1e-5, WOULD_BLOCK, "A"),
        ]
    events += [Event(T + 0.300, RECV_CALL, "A"), Event(T + 0.30001, RECV, "A", 13)]
    fig = plot_timeline(events, copy_width=1.0, ready={"A": [T + 0.285]})
    assert rects(artist(fig, GIDS["wait"])) == [(0.0, 285.0, 1.0)]
    assert rects(artist(fig, GIDS["buffered"])) == [(285.0, 15.0, 1.0)]
    assert rects(artist(fig, GIDS["copy"])) == [(300.0, 1.0, 1.0)]


def test_a_ready_time_recorded_after_the_return_is_clamped():
    events = blocking_read(wait=0.400)
    fig = plot_timeline(events, copy_width=2.0, ready={"A": [T + 0.4002]})  # logged late
    (copy,) = rects(artist(fig, GIDS["copy"]))
    assert copy[0] == 400.0


def test_with_ready_data_waiting_before_the_call_is_buffered_then_copied():
    events = [
        Event(T, SEND, "A", 5),
        Event(T + 0.100, RECV_CALL, "A"),
        Event(T + 0.10001, RECV, "A", 5),
    ]
    fig = plot_timeline(events, copy_width=1.0, ready={"A": [T + 0.040]})
    assert artist(fig, GIDS["wait"]) is None  # nothing to wait for at the call
    assert rects(artist(fig, GIDS["buffered"])) == [(40.0, 60.0, 1.0)]
    assert rects(artist(fig, GIDS["copy"])) == [(100.0, 1.0, 1.0)]


def test_with_ready_each_exchange_gets_its_own_send():
    events = blocking_read(start=0.0, wait=0.100) + blocking_read(start=0.200, wait=0.100)
    ready = {"A": [T + 0.0995, T + 0.2990]}
    fig = plot_timeline(events, copy_width=1.0, ready=ready)
    assert rects(artist(fig, GIDS["wait"])) == [(0.0, 99.5, 1.0), (200.0, 99.0, 1.0)]
    assert rects(artist(fig, GIDS["copy"])) == [(99.5, 1.0, 1.0), (299.0, 1.0, 1.0)]
    assert artist(fig, GIDS["buffered"]) is None


def test_with_ready_two_sends_read_at_once_leave_nothing_for_the_next_read():
    """Two sends coalesced into one read: the next read has no ready time of its own and
    is drawn as without ``ready`` (not matched with the second send, already read)."""
    events = [
        Event(T, RECV_CALL, "A"),
        Event(T + 0.050, RECV, "A", 10),
        Event(T + 0.100, RECV_CALL, "A"),
        Event(T + 0.150, RECV, "A", 5),
    ]
    fig = plot_timeline(events, copy_width=1.0, ready={"A": [T + 0.040, T + 0.045]})
    assert rects(artist(fig, GIDS["copy"])) == [(40.0, 10.0, 1.0), (149.0, 1.0, 1.0)]
    assert rects(artist(fig, GIDS["wait"])) == [(0.0, 40.0, 1.0), (100.0, 49.0, 1.0)]


def test_a_late_ready_time_after_the_connections_next_event_belongs_to_a_later_read():
    """A time after the return and after the connection's next event (here its next
    request) is the next reply, not a late record of this one."""
    events = [
        Event(T, RECV_CALL, "A"),
        Event(T + 0.050, RECV, "A", 5),
        Event(T + 0.060, SEND, "A", 5),
        Event(T + 0.070, RECV_CALL, "A"),
        Event(T + 0.100, RECV, "A", 5),
    ]
    fig = plot_timeline(events, copy_width=1.0, ready={"A": [T + 0.0995]})
    # first read: no ready time of its own (drawn as without ready); second: matched
    assert rects(artist(fig, GIDS["copy"])) == [(49.0, 1.0, 1.0), (99.5, 1.0, 1.0)]


def test_ready_for_an_untraced_read_never_copies_before_the_previous_event():
    """Server side: the client's next message arrived while the server was still sending
    its reply; the untraced read cannot have started before that send: buffered until it."""
    events = [
        Event(T, ACCEPT, 1),
        Event(T + 0.010, RECV, 1, 3),
        Event(T + 0.020, SEND, 1, 3),
        Event(T + 0.030, RECV, 1, 3),
    ]
    ready = {1: [T + 0.005, T + 0.015]}  # the client's two sends
    fig = plot_timeline(events, copy_width=0.5, ready=ready)
    assert rects(artist(fig, GIDS["wait"])) == [(0.0, 5.0, 1.0)]
    assert rects(artist(fig, GIDS["buffered"])) == [(15.0, 5.0, 1.0)]
    assert rects(artist(fig, GIDS["copy"])) == [(5.0, 5.0, 1.0), (20.0, 10.0, 1.0)]


def test_a_reply_recorded_before_the_clients_first_event_still_counts():
    """The reader's thread may record its own send after the server's reply came (the
    server thread ran first): that reply is ready before the reader's first event."""
    events = [
        Event(T, SEND, "B", 9),
        Event(T + 0.00002, RECV_CALL, "B"),
        Event(T + 0.00003, RECV, "B", 9),
    ]
    fig = plot_timeline(events, copy_width=0.01, ready={"B": [T - 0.00001]})
    assert artist(fig, GIDS["wait"]) is None
    assert rects(artist(fig, GIDS["buffered"])) == [(-0.01, 0.03, 1.0)]
    assert rects(artist(fig, GIDS["copy"])) == [(0.02, 0.01, 1.0)]


@pytest.mark.slow
def test_ready_for_another_connection_changes_nothing_here():
    plain = plot_timeline(blocking_read(), copy_width=1.0)
    other = plot_timeline(blocking_read(), copy_width=1.0, ready={"B": [T + 0.01]})
    assert rects(artist(plain, GIDS["copy"])) == rects(artist(other, GIDS["copy"]))


def test_the_x_axis_shows_a_span_that_starts_before_the_first_event():
    events = [Event(T, RECV_CALL, "A"), Event(T + 0.010, RECV, "A", 5)]
    fig = plot_timeline(events, copy_width=0.5, ready={"A": [T - 0.005]})
    assert rects(artist(fig, GIDS["buffered"]))[0][0] == -5.0
    assert fig.axes[0].get_xlim()[0] < -5.0
