"""TracedSocket records a client's own recv() calls on the servers' clock."""

from __future__ import annotations

import socket

import pytest

from nbio_helpers import EventLog, connect
from nbio_helpers.events import EOF, ERROR, RECV, RECV_CALL, SEND, SEND_WOULD_BLOCK, WOULD_BLOCK
from nbio_helpers.tracing import TracedSocket, merge_events


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def kinds(log):
    return [e.kind for e in log.events()]


def test_recv_records_the_call_then_the_data(pair):
    a, b = pair
    log = EventLog()
    traced = TracedSocket(a, log, conn="A")
    b.sendall(b"hello")
    assert traced.recv(1024) == b"hello"
    assert kinds(log) == [RECV_CALL, RECV]
    call, result = log.events()
    assert call.conn == result.conn == "A"
    assert result.nbytes == 5
    assert call.t <= result.t


def test_nonblocking_recv_records_would_block_and_reraises(pair):
    a, _ = pair
    log = EventLog()
    traced = TracedSocket(a, log)
    traced.setblocking(False)  # passed through to the socket
    for _ in range(3):
        with pytest.raises(BlockingIOError):
            traced.recv(10)
    assert kinds(log) == [RECV_CALL, WOULD_BLOCK] * 3
    assert log.count(WOULD_BLOCK) == 3


def test_eof_and_timeout(pair):
    a, b = pair
    log = EventLog()
    traced = TracedSocket(a, log, conn=1)
    traced.settimeout(0.05)
    with pytest.raises(TimeoutError):
        traced.recv(10)
    b.close()
    assert traced.recv(10) == b""
    assert kinds(log) == [RECV_CALL, ERROR, RECV_CALL, EOF]
    assert log.events(kind=ERROR)[0].detail == "timeout"


def test_send_and_sendall_are_recorded(pair):
    a, b = pair
    log = EventLog()
    traced = TracedSocket(a, log)
    assert traced.send(b"abc") == 3
    traced.sendall(b"defg")
    assert [(e.kind, e.nbytes) for e in log.events()] == [(SEND, 3), (SEND, 4)]
    assert b.recv(10) == b"abcdefg"


def test_send_would_block_when_the_buffer_is_full(pair):
    a, _ = pair
    log = EventLog()
    traced = TracedSocket(a, log)
    traced.setblocking(False)
    with pytest.raises(BlockingIOError):
        while True:
            traced.send(b"x" * 65536)
    assert log.count(SEND_WOULD_BLOCK) == 1
    assert log.total_bytes(SEND) > 0


def test_works_with_a_server_and_as_context_manager(make_server):
    server = make_server("select")
    log = EventLog()
    with TracedSocket(connect(server.address), log, conn="client") as sock:
        sock.sendall(b"hi")
        assert sock.recv(10) == b"HI"
        assert sock.fileno() >= 0
    assert sock.sock.fileno() == -1  # closed
    merged = merge_events(server.events, log)
    assert [e.t for e in merged] == sorted(e.t for e in merged)
    assert {e.conn for e in merged} >= {"client", 1}
    assert len(merged) == len(server.events.events()) + len(log.events())


def test_a_new_log_when_none_is_given(pair):
    traced = TracedSocket(pair[0])
    assert isinstance(traced.log, EventLog) and len(traced.log) == 0
    assert "TracedSocket" in repr(traced)
