"""The loop's event log (record.py) and its timeline (timeline.py), with Agg."""

from __future__ import annotations

import socket
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from nbio_helpers.events import WAKEUP
from nbio_helpers.loop import CHAT_SERVERS, start_chat
from nbio_helpers.loop.record import LoopLog, SelectCall, TaskRun
from nbio_helpers.loop.timeline import GIDS, plot_loop_timeline, select_rows
from nbio_helpers.server import wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("nothing_left_running")]


def known_log() -> LoopLog:
    log = LoopLog()
    t = 100.0
    log.record_select(SelectCall(t, t + 0.010, 3, 1, None))  # woke by a socket
    log.record_run(TaskRun("conn 1", t + 0.0101, t + 0.0102))
    log.record_select(SelectCall(t + 0.011, t + 0.020, 3, 2, 0.5))  # woke early
    log.record_run(TaskRun("conn 1", t + 0.0201, t + 0.0203))
    log.record_run(TaskRun("conn 2", t + 0.0203, t + 0.0204))
    log.record_select(SelectCall(t + 0.021, t + 0.031, 4, 0, 0.010))  # a timer was due
    return log


def artists(fig, gid):
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]


def test_log_counts_wakeups_and_keeps_records():
    log = known_log()
    assert log.count(WAKEUP) == 3 and log.total_bytes(WAKEUP) == 3
    assert [c.ready for c in log.selects()] == [1, 2, 0]
    assert log.lanes() == ["conn 1", "conn 2"]
    assert log.selects()[0].idle == pytest.approx(0.010)
    log.clear()
    assert log.selects() == [] and log.runs() == [] and log.count(WAKEUP) == 0


def test_counters_only_log_keeps_no_records():
    log = LoopLog(enabled=False)
    log.record_select(SelectCall(0, 1, 1, 1, None))
    log.record_run(TaskRun("x", 0, 1))
    assert log.count(WAKEUP) == 1 and log.selects() == [] and log.runs() == []


def test_select_rows():
    rows = select_rows(known_log())
    assert rows[0] == {
        "at_ms": 0.0,
        "watched": 3,
        "timeout_ms": None,
        "asleep_ms": pytest.approx(10.0),
        "ready": 1,
    }
    assert rows[2]["timeout_ms"] == pytest.approx(10.0) and rows[2]["ready"] == 0
    assert len(select_rows(known_log(), limit=2)) == 2


def test_plot_of_a_known_log():
    fig = plot_loop_timeline(known_log(), title="known")
    ax = fig.axes[0]
    [asleep] = artists(fig, GIDS["asleep"])
    assert len(asleep.get_paths()) == 3
    [unused] = artists(fig, GIDS["unused"])  # only the 0.5 s timeout was not used up
    assert len(unused.get_segments()) == 1
    [ready] = artists(fig, GIDS["ready"])
    assert len(ready.get_offsets()) == 2
    [expired] = artists(fig, GIDS["expired"])
    assert len(expired.get_offsets()) == 1
    runs = artists(fig, GIDS["run"])
    assert sorted(len(a.get_paths()) for a in runs) == [1, 2]  # conn 1 twice, conn 2 once
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["select()\nwatching 3–4", "conn 1", "conn 2"]
    assert ax.get_title() == "known"
    assert ax.get_legend() is not None
    plt.close(fig)


def test_plot_limits_lanes_and_says_so():
    log = LoopLog()
    for i in range(20):
        log.record_run(TaskRun(f"conn {i}", i, i + 0.001))
    fig = plot_loop_timeline(log, max_lanes=5)
    assert len(fig.axes[0].get_yticklabels()) == 6
    assert "15 more task lanes not shown" in fig.axes[0].get_title()
    plt.close(fig)


def test_plot_of_an_empty_log():
    fig = plot_loop_timeline(LoopLog())
    assert artists(fig, GIDS["asleep"])[0].get_paths() == []
    plt.close(fig)


@pytest.mark.parametrize("step", [s for s in CHAT_SERVERS if s != "asyncio"])
def test_every_step_records_selects_and_task_runs(step):
    with start_chat(step, name="recorded") as server:
        with socket.create_connection(server.address, timeout=5) as sock:
            sock.recv(100)
            sock.sendall(b"ann\n")
            sock.recv(200)
            time.sleep(0.05)  # an idle gap the log must show
            sock.sendall(b"/who\n")
            assert sock.recv(100) == b"* here: ann\n"
        assert wait_until(lambda: server.events.count("close") >= 1, 5)
    selects, runs = server.events.selects(), server.events.runs()
    assert selects and all(c.end >= c.start for c in selects)
    assert max(c.idle for c in selects) >= 0.04  # it slept through the gap
    assert any(c.ready for c in selects)
    assert "conn 1" in {r.lane for r in runs}
    assert server.events.count(WAKEUP) == len(selects)
    fig = plot_loop_timeline(server.events)
    assert artists(fig, GIDS["run"])
    plt.close(fig)


def test_plot_marks_look_only_turns_deadlines_labels_and_idle_gaps():
    log = LoopLog()
    t = 50.0
    log.record_select(SelectCall(t, t, 2, 0, 0))  # select(0): only looked
    log.record_select(SelectCall(t, t + 0.100, 2, 1, 0.300))  # woke early: a socket
    log.record_select(SelectCall(t + 0.101, t + 0.301, 2, 0, 0.200))  # a timer was due
    log.record_run(TaskRun("conn 1", t + 0.1001, t + 0.1002))
    fig = plot_loop_timeline(log, labels={"conn 1": "conn 1 (ann)"})
    ax = fig.axes[0]
    [nosleep] = artists(fig, GIDS["nosleep"])
    assert len(nosleep.get_offsets()) == 1
    [asleep] = artists(fig, GIDS["asleep"])
    assert len(asleep.get_paths()) == 2  # the look-only turn is not a sleep
    [deadline] = artists(fig, GIDS["deadline"])
    assert sorted(x for x, _ in deadline.get_offsets()) == pytest.approx([300.0, 301.0])
    texts = [t.get_text() for t in ax.texts]
    assert "100 of 300 ms" in texts and "200 of 200 ms" in texts  # asleep, of the timeout
    assert [t.get_text() for t in ax.get_yticklabels()][1] == "conn 1 (ann)"
    assert "3 select() calls, asleep 300 of 301 ms" in ax.get_xlabel()
    plt.close(fig)
