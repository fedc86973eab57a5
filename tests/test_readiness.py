"""nbio_helpers.lessons.readiness: level- against edge-triggered reports (epoll / kqueue), and the
counting selector behind notebook 05's "what registering costs"."""

import collections
import select
import selectors
import socket

import pytest

from nbio_helpers import SelectorsServer, request
from nbio_helpers.events import CLOSE
from nbio_helpers.lessons.readiness import NO_REPORT, CountingSelector, readiness_reports
from nbio_helpers.server import wait_until

pytestmark = pytest.mark.timeout(30)

HAS_EDGE = hasattr(select, "epoll") or hasattr(select, "kqueue")


# CI on macOS runs the kqueue path of this test (written from kqueue(2): EV_CLEAR).
@pytest.mark.skipif(not HAS_EDGE, reason="needs epoll (Linux) or kqueue (macOS, BSD)")
def test_level_reports_until_drained_edge_once():
    assert readiness_reports(edge_triggered=False) == [b"0123", b"4567", b"89", NO_REPORT]
    assert readiness_reports(edge_triggered=True) == [b"0123", NO_REPORT, NO_REPORT, NO_REPORT]


@pytest.mark.skipif(not HAS_EDGE, reason="needs epoll (Linux) or kqueue (macOS, BSD)")
def test_edge_triggered_reports_again_when_more_data_arrives():
    # One report per arrival: a chunk big enough to take all 10 bytes drains at the first.
    assert readiness_reports(edge_triggered=True, chunk=64) == [
        b"0123456789",
        NO_REPORT,
        NO_REPORT,
        NO_REPORT,
    ]
    assert readiness_reports(edge_triggered=False, chunk=64, waits=2) == [b"0123456789", NO_REPORT]


def test_without_epoll_or_kqueue_it_says_so(monkeypatch):
    monkeypatch.delattr(select, "epoll", raising=False)
    monkeypatch.delattr(select, "kqueue", raising=False)
    with pytest.raises(NotImplementedError, match=r"epoll .* or kqueue"):
        readiness_reports(edge_triggered=True)


def test_counting_selector_two_calls_per_short_connection():
    calls = collections.Counter()
    with SelectorsServer(
        name="test-count-calls", selector_class=lambda: CountingSelector(calls)
    ) as server:
        for i in range(50):
            assert request(server.address, b"one message %d" % i) == b"ONE MESSAGE %d" % i
        assert wait_until(lambda: server.events.count(CLOSE) >= 50, timeout=5)
    assert dict(calls) == {"register": 52, "unregister": 50}  # + the listener and the waker


class RecordingSelector(CountingSelector):
    """A counting selector that also records the events of every counted ``modify()``."""

    def __init__(self, calls, modified):
        super().__init__(calls)
        self.modified = modified

    def modify(self, fileobj, events, data=None):
        changes = events != self.get_key(fileobj).events
        key = super().modify(fileobj, events, data)
        if changes:
            self.modified.append(events)
        return key


def test_a_reply_too_big_for_one_send_asks_for_write_then_stops_asking():
    calls = collections.Counter()
    modified: list[int] = []
    payload = bytes(range(256)) * 16 * 1024  # 4 MiB through 64 KiB socket buffers
    with SelectorsServer(
        name="test-count-modify",
        sock_buffer_size=64 * 1024,
        selector_class=lambda: RecordingSelector(calls, modified),
    ) as server:
        with socket.create_connection(server.address, timeout=5) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.setblocking(False)
            got = bytearray()
            sent = 0
            with selectors.DefaultSelector() as sel:
                # First send without reading: the echo fills the buffers between us (a few
                # hundred kB), so the server's send() must leave bytes over and it must ask
                # for WRITE. (Reading at once, a fast client may keep up, and it never asks.)
                sel.register(sock, selectors.EVENT_WRITE)
                while calls["modify"] == 0:
                    assert sent < len(payload), "the server never asked for WRITE"
                    if sel.select(timeout=0.05):
                        sent += _send_some(sock, payload[sent : sent + 65536])
                sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
                while len(got) < len(payload):
                    assert sel.select(timeout=5), "the echo stalled"
                    if sent < len(payload):
                        sent += _send_some(sock, payload[sent : sent + 65536])
                    else:
                        sel.modify(sock, selectors.EVENT_READ)
                    try:
                        got += sock.recv(1 << 20)
                    except BlockingIOError:
                        pass
        assert bytes(got) == payload.upper()
        assert wait_until(lambda: server.events.count(CLOSE) >= 1, timeout=5)
    assert calls["register"] == 3 and calls["unregister"] == 1
    # WRITE on (with READ, or alone while backpressure pauses reading), and off at the end.
    assert any(events & selectors.EVENT_WRITE for events in modified), modified
    assert modified[-1] == selectors.EVENT_READ, modified


def _send_some(sock: socket.socket, data: bytes) -> int:
    try:
        return sock.send(data)
    except BlockingIOError:
        return 0


def test_a_modify_that_changes_only_data_is_not_counted():
    a, b = socket.socketpair()
    with CountingSelector() as sel:
        sel.register(a, selectors.EVENT_READ, data="x")
        sel.modify(a, selectors.EVENT_READ, data="y")  # same events: no system call
        assert sel.get_key(a).data == "y"
        sel.modify(a, selectors.EVENT_READ | selectors.EVENT_WRITE)
        sel.unregister(a)
        assert dict(sel.calls) == {"register": 1, "modify": 1, "unregister": 1}
    a.close()
    b.close()


def test_a_modify_made_of_unregister_and_register_counts_once(monkeypatch):
    # kqueue has no modify of its own (3.10-3.13): the base class unregisters and registers.
    monkeypatch.setattr(selectors.DefaultSelector, "modify", selectors._BaseSelectorImpl.modify)
    a, b = socket.socketpair()
    with CountingSelector() as sel:
        sel.register(a, selectors.EVENT_READ)
        sel.modify(a, selectors.EVENT_WRITE)
        assert sel.get_key(a).events == selectors.EVENT_WRITE
        sel.register(b, selectors.EVENT_READ)
        assert dict(sel.calls) == {"register": 2, "modify": 1}
    a.close()
    b.close()
