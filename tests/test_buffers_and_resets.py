"""Where a connection's bytes sit (nbio_helpers.lessons.nb02), an abortive close
(clients.close_with_reset), and a load client that fails to connect (clients._LoadClient)."""

from __future__ import annotations

import errno
import select
import socket
import sys

import pytest

from nbio_helpers import run_load
from nbio_helpers.clients import close_with_reset
from nbio_helpers.lessons.nb02 import SocketQueues, socket_queues

pytestmark = pytest.mark.timeout(20)

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="unsent/unacknowledged are Linux-only"
)


def tcp_pair(bufsize: int | None = None):
    """(ours, theirs): a connection on 127.0.0.1, buffers of ``bufsize`` if given."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        if bufsize:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
        ours = socket.socket()
        if bufsize:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
        ours.settimeout(5)
        ours.connect(listener.getsockname())
        listener.settimeout(5)
        theirs, _ = listener.accept()
    theirs.settimeout(5)
    return ours, theirs


def fill(sock: socket.socket) -> int:
    """send() 1 KiB at a time on non-blocking ``sock`` until BlockingIOError; the count."""
    sock.setblocking(False)
    total = 0
    for _ in range(100_000):
        try:
            total += sock.send(b"x" * 1024)
        except BlockingIOError:
            return total
    raise AssertionError("the buffers never filled up")


# ------------------------------------------------------------------------------ buffers
@pytest.mark.skipif(sys.platform == "win32", reason="Windows cannot tell")
def test_a_fresh_connection_has_empty_queues():
    ours, theirs = tcp_pair()
    with ours, theirs:
        for sock in (ours, theirs):
            queues = socket_queues(sock)
            assert queues.unread == 0
            if sys.platform.startswith("linux"):
                assert queues.unsent == 0 and queues.unacknowledged == 0


@pytest.mark.skipif(sys.platform == "win32", reason="Windows cannot tell")
def test_unread_counts_what_recv_would_return():
    ours, theirs = tcp_pair()
    with ours, theirs:
        ours.sendall(b"twelve bytes")
        select.select([theirs], [], [], 2)
        assert socket_queues(theirs).unread == 12
        theirs.recv(5)
        assert socket_queues(theirs).unread == 7


@linux_only
def test_full_buffers_hold_what_send_accepted():
    """Every byte send() took is in the peer's receive queue or unsent in ours (the bytes
    sent but unacknowledged are a copy of bytes already in the peer's queue)."""
    ours, theirs = tcp_pair(16 * 1024)
    with ours, theirs:
        accepted = fill(ours)
        peer, mine = socket_queues(theirs), socket_queues(ours)
        assert min(peer.unread, mine.unsent, mine.unacknowledged) >= 0
        assert peer.unread + mine.unsent == accepted
        assert mine.unacknowledged <= peer.unread


def test_windows_gives_none(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    with socket.socket() as sock:
        assert socket_queues(sock) is None


@pytest.mark.skipif(sys.platform == "win32", reason="Unix ioctl")
def test_macos_gives_unread_only(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    ours, theirs = tcp_pair()
    with ours, theirs:
        assert socket_queues(theirs) == SocketQueues(0, None, None)


# --------------------------------------------------------------------- close_with_reset
def test_close_with_reset_makes_the_peers_recv_raise():
    ours, theirs = tcp_pair()
    with ours:
        ours.setblocking(False)
        close_with_reset(theirs)
        assert theirs.fileno() == -1
        assert select.select([ours], [], [], 2)[0]  # a reset makes it readable
        with pytest.raises(ConnectionResetError):
            ours.recv(1024)


def test_close_with_reset_discards_unread_data_and_unsent_bytes():
    ours, theirs = tcp_pair()
    with ours:
        theirs.sendall(b"never delivered?")
        close_with_reset(theirs)
        ours.settimeout(2)
        got = b""
        with pytest.raises(ConnectionResetError):
            while True:
                chunk = ours.recv(1024)
                got += chunk
                assert chunk, "an orderly end (FIN), not a reset"


def test_an_orderly_close_is_not_a_reset():
    """The contrast the notebook draws: close() gives b'', close_with_reset() an error."""
    ours, theirs = tcp_pair()
    with ours:
        theirs.close()
        assert ours.recv(1024) == b""


def test_close_with_reset_closes_even_when_the_option_fails():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # SO_LINGER is for streams
    try:
        close_with_reset(sock)
    except OSError:
        pass
    assert sock.fileno() == -1


# ------------------------------------------------------------ a load client's connect()
def test_a_connect_that_fails_with_eagain_is_a_failure_not_in_progress(monkeypatch):
    """On Linux EWOULDBLOCK is EAGAIN, which connect() returns for a failure; counting it as
    "in progress" reported the client as connected (before the fix, the error was the send()
    on a socket that never connected)."""
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, address: errno.EAGAIN)
    result = run_load(("127.0.0.1", 9), clients=1, messages=1, timeout=2.0)
    assert not result.ok
    assert result.errors == ["client 0: connect failed: EAGAIN"]


def test_connect_in_progress_still_connects(make_server):
    server = make_server("select")
    result = run_load(server.address, clients=5, messages=2, timeout=5.0)
    assert result.ok, result.errors
