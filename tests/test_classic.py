"""classic: the correct loop serves everyone; each flaw subclass does its damage, and only
its own; every server stops cleanly, even frozen on a quiet client or killed by its flaw."""

import socket
import sys
import warnings

import pytest

import nbio_helpers.lessons.nb03 as C
from nbio_helpers import request, run_load
from nbio_helpers.events import ACCEPT, CLOSE, EOF, RECV, SEND, WOULD_BLOCK
from nbio_helpers.server import wait_until

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def start():
    """``start(cls, **options)`` -> a started server; stopped (its error swallowed) at the end."""
    started = []

    def make(cls=C.ClassicServer, **options):
        server = cls(**options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        try:
            server.stop()
        except Exception:
            pass  # a flaw that killed the loop: its error is asserted in the test
        assert not server.running


# ------------------------------------------------------------------ the correct loop
def test_options_are_checked():
    with pytest.raises(ValueError, match="interval"):
        C.ClassicServer(interval=5)
    with pytest.raises(ValueError, match="interval"):
        C.ClassicServer(interval=-1)


def test_flaws_table_is_one_subclass_per_flaw_in_loop_order():
    assert list(C.FLAWS) == [
        "serves_when_idle",
        "blocking_accept",
        "misused_append",
        "partial_send",
        "send_errors_kill",
        "never_closed",
    ]
    for name, cls in C.FLAWS.items():
        assert issubclass(cls, C.ClassicServer) and cls.flaw == name and cls.summary
        overridden = [m for m in vars(cls) if callable(vars(cls)[m])]
        assert len(overridden) == 1, (name, overridden)  # one small override each
        assert hasattr(C.ClassicLoop, overridden[0])  # of a step of the loop


def test_correct_loop_serves_many_clients(start):
    server = start()
    assert request(server.address, b"hello") == b"HELLO"
    result = run_load(server.address, clients=30, messages=10, size=200, timeout=10)
    assert result.ok, result.errors[:3]


def test_correct_loop_keeps_partial_sends(start):
    server = start(sndbuf=4096)
    outcome = C.echo_payload(server.address, 1 << 20, timeout=20, quiet=5)
    assert outcome.intact and outcome.lost == 0, outcome
    if sys.platform != "win32":  # Windows may take each send() whole
        assert any(e.detail.startswith("partial") for e in server.events.events(kind=SEND))


def test_correct_loop_closes_departed_clients_after_their_reply(start):
    server = start()
    assert C.half_close_sees_eof(server.address, wait=5)
    for _ in range(3):
        assert request(server.address, b"x") == b"X"
    assert wait_until(lambda: server.open_connections() == 0, 5)
    assert server.rlist == [] and server.done == [] and server.wlist == []
    assert server.events.count(EOF) == 4 and server.events.count(CLOSE) == 4


def test_correct_loop_survives_silent_and_vanishing_clients(start):
    server = start()
    C.leave_silently(server)
    C.leave_before_reply(server)
    assert server.running and server.error is None
    assert request(server.address, b"still here") == b"STILL HERE"


def test_loop_records_through_traced_sockets(start):
    server = start()
    with socket.create_connection(server.address, timeout=5) as client:
        assert wait_until(lambda: server.events.count(WOULD_BLOCK) > 10, 5)
        client.sendall(b"abc")
        assert client.recv(3) == b"ABC"
    assert wait_until(lambda: server.events.count(CLOSE) == 1, 5)
    assert server.events.count(ACCEPT) == 1 and server.events.total_bytes(RECV) == 3
    assert server.events.total_bytes(SEND) == 3


def test_interval_delays_replies_but_stop_still_works(start):
    server = start(interval=0.2)
    assert request(server.address, b"slow") == b"SLOW"
    server.stop()
    assert not server.running


def test_no_socket_left_open_and_no_resource_warning(start):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        server = start()
        for _ in range(5):
            request(server.address, b"x")
        server.stop()
        assert server.open_connections() == 0


# ------------------------------------------------------------------------ the flaws
def test_serves_when_idle_makes_arrivals_delay_everyone(start):
    interval = 0.02
    flawed = C.wait_while_arriving(start(C.ServesOnlyWhenIdle, interval=interval), newcomers=10)
    fixed = C.wait_while_arriving(start(interval=interval), newcomers=10)
    assert flawed > 5 * interval, flawed  # about one round per newcomer first
    assert fixed < 4 * interval, fixed  # accepted together, served that round


@pytest.mark.slow
def test_blocking_accept_freezes_then_recovers(start):
    server = start(C.BlockingAccepted)
    assert C.is_starved(server, wait=0.3)
    assert request(server.address, b"back", timeout=5) == b"BACK"  # the quiet one left
    assert not C.is_starved(start(), wait=5)


def test_stop_wakes_a_loop_frozen_on_a_quiet_client(start):
    server = start(C.BlockingAccepted)
    with socket.create_connection(server.address, timeout=5):
        assert wait_until(lambda: server.events.count(ACCEPT) == 1, 5)
        server.stop(timeout=5)
    assert not server.running


def test_misused_append_answers_nobody_yet_keeps_running(start):
    server = start(C.MisusedAppend)
    with pytest.raises(ConnectionError):  # closed by the catch-all, unanswered
        request(server.address, b"hi", timeout=2)
    assert wait_until(lambda: server.events.count(CLOSE) == 1, 2)
    assert server.running and server.error is None  # the TypeError left no trace


def test_misused_append_removes_a_silent_client_twice(start):
    server = start(C.MisusedAppend)
    C.leave_silently(server)
    assert wait_until(lambda: not server.running, 5)
    assert isinstance(server.error, ValueError) and "not in list" in str(server.error)
    with pytest.raises(ValueError):
        server.stop()  # stop() re-raises what killed the loop


@pytest.mark.slow
def test_partial_send_loses_bytes(start):
    outcome = C.echo_payload(start(C.DropsPartialSends, sndbuf=4096).address, 1 << 20, quiet=0.3)
    if sys.platform != "win32":
        assert not outcome.intact and outcome.lost > 0
        assert outcome.received + outcome.lost == outcome.sent


def test_send_errors_kill_the_loop(start):
    server = start(C.SendErrorsKill)
    C.leave_before_reply(server)
    assert wait_until(lambda: not server.running, 5)
    assert isinstance(server.error, OSError) and not isinstance(server.error, BlockingIOError)


def test_never_closed_holds_descriptors_and_withholds_eof(start):
    server = start(C.NeverCloses)
    assert not C.half_close_sees_eof(server.address, wait=0.2)
    for _ in range(3):
        assert request(server.address, b"x") == b"X"
    assert wait_until(lambda: server.events.count(EOF) == 4, 5)
    assert server.rlist == [] and server.open_connections() == 4  # not polled, not closed
    assert server.events.count(CLOSE) == 0


@pytest.mark.parametrize("name", list(C.FLAWS))
def test_every_flawed_server_stops_cleanly_when_idle(name):
    server = C.FLAWS[name](interval=0.01).start()
    if name == "misused_append":
        with pytest.raises(ConnectionError):  # closed unanswered, by design
            request(server.address, b"ok", timeout=2)
    else:
        assert request(server.address, b"ok", timeout=2) == b"OK"
    server.stop()
    assert not server.running and server.open_connections() == 0


def test_flaws_on_the_reference_article_case_misused_append_raises_type_error():
    # The line the catch-all hides, as Python reports it (the notebook shows this).
    with pytest.raises(TypeError, match=r"append\(\) takes exactly one argument \(2 given\)"):
        [].append(1, 2)
