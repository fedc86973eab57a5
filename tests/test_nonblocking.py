"""nbio_helpers.nonblocking: try once; on BlockingIOError wait for readiness; retry.

Each test on a socketpair (no server needed); the waits are bounded by deadlines.
"""

import socket
import sys
import threading
import time

import pytest

from nbio_helpers.addresses import address_family, format_address, is_ipv6
from nbio_helpers.clients import stream_echo
from nbio_helpers.nonblocking import READ, WRITE, Readiness, attempt, when_ready


class Counting:
    """A call that raises BlockingIOError the first ``blocks`` times, then returns ``value``."""

    def __init__(self, blocks: int, value="done"):
        self.blocks, self.value, self.calls = blocks, value, 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.blocks:
            raise BlockingIOError
        return self.value


def test_attempt_returns_the_result_or_none_when_it_would_block(pair):
    a, b = pair
    assert attempt(a.recv, 10) is None  # nothing queued
    b.send(b"hi")
    assert attempt(a.recv, 10) == b"hi"
    assert attempt(a.recv, 10) is None


@pytest.mark.skipif(sys.platform == "win32", reason="Windows' socketpair is TCP: a send may pass")
def test_attempt_lets_other_errors_through(pair):
    a, b = pair
    b.close()
    with pytest.raises(OSError):  # the peer is gone: an error, not "would block"
        attempt(a.send, b"x")


def test_when_ready_tries_first_and_makes_no_selector_when_the_call_succeeds(pair, monkeypatch):
    a, b = pair
    b.send(b"queued")
    made = []
    monkeypatch.setattr(Readiness, "wait", lambda *args: made.append(args) or READ)
    assert when_ready(a, READ, a.recv, 100, deadline=time.monotonic() + 1) == b"queued"
    assert made == []  # no wait at all: the first try succeeded


def test_when_ready_waits_for_data_that_comes_later(pair):
    a, b = pair
    timer = threading.Timer(0.05, b.send, (b"later",))
    timer.start()
    try:
        assert when_ready(a, READ, a.recv, 100, deadline=time.monotonic() + 5) == b"later"
    finally:
        timer.join()


def test_a_spurious_readiness_is_waited_again(pair):
    # The socket stays readable, but the call says "would block" twice: readiness is a hint.
    a, b = pair
    b.send(b"x")
    call = Counting(blocks=3)
    with Readiness(a) as ready:
        assert ready.call(READ, call, deadline=time.monotonic() + 2) == "done"
    assert call.calls == 4


def test_the_deadline_bounds_the_wait(pair):
    a, _ = pair
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        when_ready(a, READ, a.recv, 100, deadline=start + 0.1)
    assert time.monotonic() - start >= 0.1
    with pytest.raises(TimeoutError):  # a deadline already past: no wait, one try
        when_ready(a, READ, a.recv, 100, deadline=start)


def test_a_full_send_buffer_waits_for_room(pair):
    a, b = pair
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    filled = 0
    while (sent := attempt(a.send, b"f" * 65536)) is not None:
        filled += sent
    drained = threading.Event()

    def drain():
        got = 0
        while got < filled:
            try:
                got += len(b.recv(1 << 20))
            except BlockingIOError:
                time.sleep(0.005)
        drained.set()

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        assert when_ready(a, WRITE, a.send, b"more", deadline=time.monotonic() + 5) > 0
    finally:
        reader.join(5)
    assert drained.is_set()


def test_readiness_reports_what_the_socket_is_ready_for(pair):
    a, b = pair
    with Readiness(a) as ready:
        assert ready.wait(WRITE, time.monotonic() + 1) == WRITE  # room, nothing to read
        b.send(b"x")
        assert ready.wait(READ, time.monotonic() + 1) == READ
        assert ready.wait(READ | WRITE, time.monotonic() + 1) == READ | WRITE
    ready.close()  # idempotent; the socket stays open
    assert a.fileno() != -1


def test_stream_echo_sends_and_reads_both_ways_at_once(pair):
    # A peer that echoes upper-cased, in a thread; the payload is far larger than the
    # buffers, so sending first and reading after would deadlock.
    a, b = pair
    b.setblocking(True)
    b.settimeout(5)
    payload = b"abcdefghijklmnopqrstuvwxyz" * 40_000

    def echo():
        done = 0
        while done < len(payload):
            data = b.recv(65536)
            if not data:
                return
            b.sendall(data.upper())
            done += len(data)

    peer = threading.Thread(target=echo)
    peer.start()
    try:
        sent, got = stream_echo(a, payload, timeout=10, stall=2, send_size=65536)
    finally:
        peer.join(10)
    assert sent == len(payload) and got == payload.upper()


def test_stream_echo_stops_after_a_stall_and_when_the_peer_closes(pair):
    a, b = pair
    start = time.monotonic()
    sent, got = stream_echo(a, b"x" * 10, timeout=5, stall=0.1)  # nobody answers
    assert (sent, got) == (10, b"") and time.monotonic() - start < 2
    b.close()
    assert stream_echo(a, b"y", timeout=5, stall=2)[1] == b""  # EOF or reset: no raise


def test_the_family_rule_and_the_address_format():
    assert address_family("127.0.0.1") == socket.AF_INET
    assert address_family("localhost") == socket.AF_INET
    assert address_family("::1") == socket.AF_INET6
    assert is_ipv6("fe80::1%eth0") and not is_ipv6("example.org")
    assert format_address(("127.0.0.1", 8080)) == "127.0.0.1:8080"
    assert format_address(("::1", 8080, 0, 0)) == "[::1]:8080"
