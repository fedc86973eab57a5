"""The demonstrations of notebook 04: each does what the notebook says, cleans up after itself,
and stays bounded. No timed assertions: spinning is detected by counting wake-ups."""

import math
import sys

import pytest

from nbio_helpers import PollingServer, SelectServer, connect, request, run_load
from nbio_helpers.events import RECV, SEND, WAKEUP, Event
from nbio_helpers.lessons.nb04 import (
    ONE_WINS,
    AlwaysWritableSelectServer,
    HeartbeatSelectServer,
    ResetBeforeAccept,
    count_partial_sends,
    high_descriptor_client,
    low_descriptors_taken,
    partial_send_report,
    reset_before_accept,
    select_cost_by_descriptor,
    select_on_high_descriptor,
    two_acceptors,
)
from nbio_helpers.measure import (
    ComparisonRow,
    IdleCost,
    compare,
    comparison_table,
    idle_cost,
    loop_rounds,
    plot_comparison,
)
from nbio_helpers.measure.comparison import model_spec
from nbio_helpers.models.select_model import FD_SETSIZE
from nbio_helpers.server import wait_until

pytestmark = pytest.mark.alone  # measures: runs alone under pytest -n

posix_only = pytest.mark.skipif(
    sys.platform == "win32", reason="descriptor numbers: POSIX select() only"
)


# ---------------------------------------------------------------- the select loops
@pytest.mark.parametrize("cls", [AlwaysWritableSelectServer, HeartbeatSelectServer])
def test_variants_are_correct_echo_servers(cls):
    with cls() as server:
        assert request(server.address, b"hello") == b"HELLO"
        result = run_load(server.address, clients=30, messages=5, size=2000)
        assert result.ok, result.errors


def test_write_interest_on_idle_sockets_spins():
    with AlwaysWritableSelectServer(record_events=False) as server:
        measured = idle_cost(server, clients=1, seconds=0.05)
        assert isinstance(measured, IdleCost) and measured.rounds_per_second > 0
        # One idle client connected: the loop keeps waking up by itself.
        with connect(server.address):
            start = server.events.count(WAKEUP)
            assert wait_until(lambda: server.events.count(WAKEUP) - start > 1000, timeout=10)


def test_select_server_sleeps_while_clients_are_idle():
    with SelectServer(record_events=False) as server:
        measured = idle_cost(server, clients=5, seconds=0.2)
    # A wake-up needs an event; idle clients make none (a loaded machine only means fewer).
    rate = measured.rounds_per_second
    assert math.isnan(rate) or rate * 0.2 < 5


def test_loop_rounds_counts_polling_rounds_too():
    # Busy polling records no wake-up (it never waits) but one ACCEPT_WOULD_BLOCK per round.
    with PollingServer(interval=0, record_events=False) as server:
        assert wait_until(lambda: loop_rounds(server) > 1000, timeout=10)
    with SelectServer(record_events=False) as server:
        assert request(server.address, b"x") == b"X"
        assert loop_rounds(server) == server.events.count(WAKEUP)


def test_idle_cost_closes_its_clients():
    with SelectServer() as server:
        idle_cost(server, clients=3, seconds=0.01)
        assert wait_until(lambda: server.events.count("close") == 3, timeout=5)


def test_heartbeat_beats_while_serving():
    with HeartbeatSelectServer(every=0.01) as server:
        assert wait_until(lambda: server.beats >= 3, timeout=5)
        assert request(server.address, b"beat") == b"BEAT"
        assert server.events.count(WAKEUP) >= 3
    with pytest.raises(ValueError):
        HeartbeatSelectServer(every=0)


# ---------------------------------------------------------------- partial sends
def test_count_partial_sends_replays_the_pending_output():
    events = [
        Event(0, RECV, 1, 100),
        Event(0, SEND, 1, 40),  # partial: 100 pending
        Event(0, SEND, 1, 60),  # whole rest: not partial
        Event(0, RECV, 2, 10),
        Event(0, RECV, 1, 5),
        Event(0, SEND, 2, 10),
        Event(0, SEND, 1, 5),  # both complete
        Event(0, WAKEUP, None, 2),  # ignored
        Event(0, RECV, 1, 50),
        Event(0, RECV, 1, 50),
        Event(0, SEND, 1, 99),  # partial
    ]
    assert count_partial_sends(events) == 2
    assert count_partial_sends([]) == 0


@pytest.mark.timeout(60)
def test_partial_send_report_big_payload():
    report = partial_send_report(payload=4 * 1024 * 1024, sndbuf=64 * 1024)
    assert report.ok
    assert report.recv_calls > 1 and report.send_calls > 1
    assert 0 <= report.partial_sends < report.send_calls


# ---------------------------------------------------------------- readiness is a hint
def test_two_acceptors_one_gets_the_client_the_other_blockingioerror(open_fds, nbio_threads):
    before = open_fds()
    for _ in range(20):  # deterministic: the same every time
        assert (
            two_acceptors()
            == ONE_WINS
            == ["accept() got the client", "accept() raised BlockingIOError"]
        )
    assert open_fds() == before and not nbio_threads()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="what Linux does (run)")
def test_reset_before_accept_linux_hands_over_the_dead_connection(open_fds):
    before = open_fds()
    assert reset_before_accept() == ResetBeforeAccept(
        selected=True,
        accept="returned a socket",
        first_recv="ConnectionResetError",
        second_accept="BlockingIOError",
    )
    assert open_fds() == before


def test_reset_before_accept_never_blocks_on_any_os():
    gone = reset_before_accept()
    assert gone.selected
    assert gone.accept in (
        "returned a socket",
        "BlockingIOError",
        "ConnectionAbortedError",
        "ConnectionResetError",
    )
    assert gone.second_accept == "BlockingIOError"


# ---------------------------------------------------------------- what one call costs
@posix_only
def test_select_cost_follows_the_sockets_far_more_than_their_numbers(open_fds):
    before = open_fds()
    cost = select_cost_by_descriptor()
    assert cost.ran, cost.explanation
    assert cost.high >= 1000 and cost.count >= 800
    # The fact notebook 04 asserts: ratios of medians of many calls, with wide margins
    # (measured here, loaded or not: 1.2 and about 120).
    assert cost.one_high < 3 * cost.one_low  # nfds 1001 against 4: a little more
    assert cost.many_low > 20 * cost.one_high  # 900 sockets: far more
    assert open_fds() == before


def test_select_cost_is_not_shown_where_numbers_play_no_part(monkeypatch):
    import types

    import nbio_helpers.lessons.nb04 as demos

    monkeypatch.setattr(demos, "sys", types.SimpleNamespace(platform="win32"))
    cost = demos.select_cost_by_descriptor()
    assert not cost.ran and "Windows" in cost.explanation


# ---------------------------------------------------------------- FD_SETSIZE
@posix_only
def test_select_refuses_a_high_descriptor_and_leaves_nothing_open(open_fds):
    before = open_fds()
    demo = select_on_high_descriptor()
    assert demo.ran, demo.explanation
    assert demo.error == "ValueError" and "select" in demo.message
    assert open_fds() == before


@posix_only
def test_the_open_files_limit_is_raised_then_restored(open_fds):
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FD_SETSIZE + 300:
        pytest.skip("the hard limit on open files is too low")
    if open_fds() > 400:
        pytest.skip("too many descriptors open to lower the limit for this test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
    try:
        demo = select_on_high_descriptor()
        assert demo.ran and demo.error == "ValueError"
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == 512
        with low_descriptors_taken():
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > FD_SETSIZE
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == 512
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@posix_only
def test_low_descriptors_taken_pushes_new_sockets_up(open_fds):
    import socket

    before = open_fds()
    with low_descriptors_taken() as taken:
        assert taken > 0
        with socket.socket() as sock:
            assert sock.fileno() >= FD_SETSIZE
    assert open_fds() == before


@posix_only
@pytest.mark.timeout(60)
def test_select_server_refuses_a_high_descriptor_and_serves_the_others(open_fds):
    before = open_fds()
    outcome = high_descriptor_client("select")
    assert outcome.ran, outcome.explanation
    assert not outcome.high_client_served
    assert "FD_SETSIZE" in outcome.refusal
    assert outcome.others_served
    assert open_fds() == before


@posix_only
@pytest.mark.timeout(60)
def test_selectors_server_serves_a_high_descriptor():
    outcome = high_descriptor_client("selectors")
    assert outcome.ran and outcome.high_client_served and outcome.others_served
    assert outcome.refusal == ""


# ---------------------------------------------------------------- comparison
def test_model_specs():
    assert model_spec("select") == ("select", "select", {})
    assert model_spec(("polling", {"interval": 0.01})) == (
        "polling interval=0.01",
        "polling",
        {"interval": 0.01},
    )
    assert model_spec(("busy", "polling", {"interval": 0})) == ("busy", "polling", {"interval": 0})
    assert model_spec(AlwaysWritableSelectServer)[0] == "select-always-write"


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_compare_rows_table_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    rows = compare(  # the parts notebook 04 measures: no connection probe
        [
            ("sleepy", "polling", {"interval": 0.002}),
            "select",
            ("spin", AlwaysWritableSelectServer, {}),
        ],
        idle_clients=3,
        idle_seconds=0.05,
        requests=5,
        trials=2,
        load_clients=5,
        load_seconds=0.03,
        load_trials=2,
        parts=("idle", "latency", "load"),
    )
    assert [r.label for r in rows] == ["sleepy", "select", "spin"]
    assert [r.model for r in rows] == ["polling", "select", "select-always-write"]
    for row in rows:
        assert isinstance(row, ComparisonRow) and row.load_ok
        assert row.median_latency > 0 and row.tail_latency >= row.median_latency
        assert row.tail_name == "max" and row.latency_samples == 10  # too few for a p90
        assert row.tried == 0  # no connection probe
        assert row.throughput > 0 and row.idle_cpu >= 0 and row.idle_wakeups >= 0
        assert row.as_dict()["label"] == row.label
    # Wake-ups per second, not CPU, tell a spinning loop from a sleeping one on any machine.
    assert rows[2].idle_wakeups > 1000 and rows[1].idle_wakeups < 50
    table = comparison_table(rows)
    assert all(r.label in table for r in rows) and "idle CPU" in table and "max" in table
    fig = plot_comparison(rows, title="t")
    assert len(fig.axes) == 3
    import matplotlib.pyplot as plt

    plt.close(fig)
