"""The classic polling server: each flaw does its damage when on, none when fixed, and the
server always stops cleanly (even frozen on a quiet client)."""
import socket

import pytest

from nbio_helpers import request, run_load
from nbio_helpers.classic import (FLAWS, ClassicPollingServer, burst, echo_payload,
                                  half_close_sees_eof, is_starved, send_rounds)
from nbio_helpers.events import ACCEPT, CLOSE, EOF, ERROR, SEND
from nbio_helpers.server import wait_until

pytestmark = pytest.mark.timeout(30)

ALL = set(FLAWS)


@pytest.fixture
def classic():
    """``classic(flaws_on, **options)`` -> a started server with only those flaws."""
    started = []

    def make(flaws=(), **options):
        server = ClassicPollingServer(fix=ALL - set(flaws), **options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
        assert not server.running


def test_options_are_checked():
    with pytest.raises(ValueError, match="unknown flaw"):
        ClassicPollingServer(fix={"typo"})
    with pytest.raises(ValueError, match="pause"):
        ClassicPollingServer(pause=5)
    assert ClassicPollingServer().flaws == list(FLAWS)
    assert ClassicPollingServer(fix="all").flaws == []
    one_fixed = ClassicPollingServer(fix="partial_send").flaws
    assert one_fixed == [f for f in FLAWS if f != "partial_send"]


def test_fixed_server_serves_many_clients(classic):
    server = classic()
    assert request(server.address, b"hello") == b"HELLO"
    result = run_load(server.address, clients=30, messages=10, size=200, timeout=10)
    assert result.ok, result.errors[:3]


def test_fixed_server_echoes_a_large_payload_through_small_buffers(classic):
    server = classic(sndbuf=4096)
    outcome = echo_payload(server.address, 1 << 20, timeout=20, quiet=5)
    assert outcome.lost == 0, outcome
    assert outcome.intact
    assert any(e.detail.startswith("partial") for e in server.events.events(kind=SEND))


def test_misused_append_closes_every_client_unanswered(classic):
    server = classic({"misused_append"})
    with pytest.raises(ConnectionError):
        request(server.address, b"hi", timeout=2)
    assert wait_until(lambda: server.events.count(CLOSE) == 1, 2)
    assert "append() takes exactly one argument" in server.events.events(kind=ERROR)[0].detail
    assert server.events.events(kind=CLOSE)[0].detail == "closed by the catch-all except"


def test_partial_send_flaw_loses_bytes(classic):
    server = classic({"partial_send"}, sndbuf=4096)
    outcome = echo_payload(server.address, 1 << 20)
    assert not outcome.intact and outcome.lost > 0
    assert outcome.received + outcome.lost == outcome.sent


def test_blocking_accept_flaw_starves_the_others(classic):
    server = classic({"blocking_accept"})
    assert is_starved(server, wait=0.3)
    # The quiet client has gone: the loop runs again.
    assert request(server.address, b"back", timeout=5) == b"BACK"


def test_fixed_accept_does_not_starve(classic):
    assert not is_starved(classic(), wait=5)


def test_stop_wakes_a_loop_frozen_on_a_quiet_client(classic):
    server = classic({"blocking_accept"})
    with socket.create_connection(server.address, timeout=5):
        assert wait_until(lambda: server.events.count(ACCEPT) == 1, 5)
        server.stop(timeout=5)
    assert not server.running


def test_mutating_lists_flaw_skips_replies(classic):
    server = classic({"mutating_lists"}, pause=0.02)
    delays = burst(server.address, clients=8)
    server.stop()                              # so that every send is in the log
    assert max(delays) < float("inf")          # everyone is answered, eventually
    assert send_rounds(server.events) >= 3     # 8 -> 4 -> 2 -> 1 pending: several rounds
    assert len({round(d, 2) for d in delays}) >= 3


def test_fixed_lists_reply_in_one_round(classic):
    server = classic(pause=0.02)
    burst(server.address, clients=8)
    server.stop()
    assert send_rounds(server.events) <= 2     # one, or two if the burst straddled a round


def test_closed_not_cleaned_flaw_keeps_dead_connections(classic):
    server = classic({"closed_not_cleaned"})
    assert not half_close_sees_eof(server.address, wait=0.2)
    for _ in range(3):
        assert request(server.address, b"x") == b"X"
    assert wait_until(lambda: server.events.count(EOF) > 100, 5)   # polled again and again
    assert len(server.rlist) == 4 and server.events.count(CLOSE) == 0


def test_fixed_server_closes_departed_clients(classic):
    server = classic()
    assert half_close_sees_eof(server.address, wait=5)
    for _ in range(3):
        assert request(server.address, b"x") == b"X"
    assert wait_until(lambda: server.events.count(CLOSE) == 4, 5)
    assert server.rlist == [] and server.events.count(EOF) == 4


def test_time_sleep_pause_delays_replies_but_stop_still_works(classic):
    server = classic(pause=0.2)
    assert request(server.address, b"slow") == b"SLOW"
    server.stop()
    assert not server.running


def test_send_rounds_counts_rounds_with_sends():
    from nbio_helpers.events import ACCEPT_WOULD_BLOCK, Event
    kinds = [ACCEPT_WOULD_BLOCK, SEND, SEND, ACCEPT_WOULD_BLOCK, ACCEPT_WOULD_BLOCK, SEND]
    assert send_rounds([Event(i, k) for i, k in enumerate(kinds)]) == 2


def test_all_but_names_the_flaws_to_fix():
    from nbio_helpers.classic import all_but
    assert all_but("partial_send") == set(FLAWS) - {"partial_send"}
    assert all_but() == set(FLAWS)
    with pytest.raises(ValueError):
        all_but("nope")
