"""One conformance suite, run against every server model (as CPython's test_selectors does).

The ``model`` fixture (conftest.py) runs each test once per model; tests that only make sense
for some models take ``concurrent_model`` (every model but ``blocking``) or
``nonblocking_model`` (the Connection-based models: polling, select, selectors);
``BUFFERED_MODELS`` adds ``tasks``, which keeps its own output buffer too (PAUSE events).
After every fault the server must still answer a fresh client.
"""

from __future__ import annotations

import collections
import json
import os
import random
import select
import socket
import struct
import sys
import time

import pytest

from nbio_helpers import FD_SETSIZE, connect, recv_exactly, request
from nbio_helpers.events import ACCEPT, CLOSE, EOF, PAUSE, RECV, RESUME, SEND, SEND_WOULD_BLOCK
from nbio_helpers.server import wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("nothing_left_running")]

NONBLOCKING_MODELS = ("polling", "select", "selectors")  # Connection-based: PAUSE events
BUFFERED_MODELS = (*NONBLOCKING_MODELS, "tasks")  # own output buffers: PAUSE, SEND events
MiB = 1024 * 1024
SMALL_BUFFER = 4096


def random_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def still_serving(server) -> None:
    """The server answers a new client after whatever the test did to it."""
    assert request(server.address, b"still serving?", timeout=10) == b"STILL SERVING?"


def small_buffer_socket(address) -> socket.socket:
    """A client socket whose kernel buffers are set to 4096 bytes *before* connect()."""
    sock = socket.socket(socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sock.settimeout(10)
    sock.connect(address)
    return sock


def fill(
    sock: socket.socket,
    payload: bytes,
    until=lambda: True,
    quiet: float = 0.25,
) -> int:
    """Send ``payload`` without ever reading, until the peer stops taking bytes.

    "Stops" means: the socket stayed unwritable for ``quiet`` seconds and ``until()`` is true
    (e.g. the server recorded a PAUSE). Returns how many bytes were sent.
    """
    sock.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 30
    while sent < len(payload):
        _, writable, _ = select.select([], [sock], [], quiet)
        if not writable:
            if until():
                break
            assert time.monotonic() < deadline, "the server stopped reading, but not as expected"
            continue
        try:
            sent += sock.send(payload[sent : sent + 65536])
        except BlockingIOError:  # readiness is a hint
            pass
    sock.settimeout(20)
    return sent


def partial_sends(events) -> int:
    """Replay RECV/SEND events: how many ``send()`` calls left part of the pending output."""
    pending = collections.Counter()
    partial = 0
    for event in events.events((RECV, SEND)):
        if event.kind == RECV:
            pending[event.conn] += event.nbytes
        else:
            partial += event.nbytes < pending[event.conn]
            pending[event.conn] -= event.nbytes
    return partial


def log_is_complete(events) -> bool:
    """True if the ring buffer never dropped an event (the replay above is then exact)."""
    return len(events) == sum(events.counts().values())


# ------------------------------------------------------------------------ echo correctness
def test_echo_upper_cases(server):
    assert request(server.address, b"hello, world") == b"HELLO, WORLD"


def test_echo_non_utf8_and_nul_bytes(server):
    data = bytes(range(256)) + b"\xff\xfe\xc3\x28 \x00\x00 nul inside\x00"
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert request(server.address, data) == data.upper()
    assert request(server.address, b"\x00") == b"\x00"


def test_many_messages_on_one_connection(server):
    with connect(server.address) as sock:
        for i in range(50):
            message = f"message {i} of 50\n".encode()
            sock.sendall(message)
            assert recv_exactly(sock, len(message)) == message.upper()


def test_many_connections_one_after_another(server):
    for i in range(50):
        assert request(server.address, b"n%d" % i) == b"N%d" % i


def test_single_1mib_send(server, exchange):
    data = random_bytes(MiB, seed=1)
    assert exchange(server.address, data) == data.upper()  # one sendall() of 1 MiB
    still_serving(server)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_8mib_with_small_socket_buffers(model, make_server, exchange):
    """8 MiB through 4 KiB kernel buffers on both ends: byte for byte, partial sends happen."""
    server = make_server(model, sock_buffer_size=SMALL_BUFFER)
    data = random_bytes(8 * MiB, seed=8)
    echoed = exchange(server.address, data, bufsize=SMALL_BUFFER, timeout=60)
    assert len(echoed) == len(data)
    assert echoed == data.upper()
    if model in BUFFERED_MODELS:
        events = server.events
        assert events.total_bytes(RECV) == events.total_bytes(SEND) == len(data)
        # A partial send: send() raised BlockingIOError, or took less than was pending.
        proven = events.count(SEND_WOULD_BLOCK) > 0 or (
            log_is_complete(events) and partial_sends(events) > 0
        )
        assert proven, f"no partial send recorded: {events.counts()}"
    still_serving(server)


# --------------------------------------------------------------------------- many clients
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_500_concurrent_clients(server, cli):
    """500 clients x 20 messages, from a subprocess (this process keeps few descriptors, so
    the select model stays below FD_SETSIZE)."""
    host, port = server.address
    done = cli(
        "load",
        "--host",
        host,
        "--port",
        port,
        "--clients",
        500,
        "--messages",
        20,
        "--size",
        64,
        "--timeout",
        90,
        "--json",
        timeout=110,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    summary = json.loads(done.stdout)
    assert summary["ok"] and summary["completed"] == 500 * 20, summary
    # Every client was accepted and served to its end (the blocking model: one after another).
    assert wait_until(lambda: server.events.count(EOF) >= 500, 10), server.events.counts()
    assert server.events.count(ACCEPT) == 500
    assert server.events.total_bytes(RECV) == 500 * 20 * 64
    still_serving(server)


# --------------------------------------------------------------------------------- faults
@pytest.mark.parametrize("when", ["mid-message", "idle"])
def test_client_resets(server, when):
    """Linger 0 then close: the kernel sends RST. Mid-message, the server's send() or recv()
    fails; on an idle connection, its recv() fails. Either way: close it, serve the rest."""
    sock = connect(server.address)
    if when == "mid-message":
        sock.setblocking(False)
        try:
            sock.send(random_bytes(256 * 1024))  # as much as fits now; never read the echo
        except BlockingIOError:
            pass
    else:
        assert wait_until(lambda: server.events.count(ACCEPT) >= 1, 10)
    linger = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    sock.close()  # linger 0: close sends RST, not FIN
    assert wait_until(lambda: server.events.count(CLOSE) >= 1, 10), server.events.counts()
    still_serving(server)


def test_half_close_gets_remaining_echo_then_eof(server):
    with connect(server.address) as sock:
        sock.sendall(b"before half-close")
        sock.shutdown(socket.SHUT_WR)  # "I will send no more", still reading
        assert recv_exactly(sock, 17) == b"BEFORE HALF-CLOSE"
        assert sock.recv(1) == b""  # then the server's EOF, not a reset
    still_serving(server)


def test_half_close_after_large_send(server, exchange):
    data = random_bytes(300 * 1024, seed=3)
    assert exchange(server.address, data) == data.upper()  # half-closes, reads until EOF
    still_serving(server)


@pytest.mark.slow
def test_client_that_never_reads_does_not_stall_others(concurrent_model, make_server):
    server = make_server(concurrent_model, sock_buffer_size=SMALL_BUFFER)
    hog = small_buffer_socket(server.address)
    with hog:
        payload = random_bytes(16 * MiB, seed=4)
        stalled = (
            (lambda: server.events.count(PAUSE) > 0)
            if concurrent_model in BUFFERED_MODELS
            else (lambda: True)
        )
        sent = fill(hog, payload, until=stalled)
        assert sent < len(payload), "the server never stopped reading a client that never reads"
        for i in range(3):  # the others are served meanwhile
            assert request(server.address, b"other %d" % i, timeout=10) == b"OTHER %d" % i
        assert recv_exactly(hog, sent, timeout=30) == payload[:sent].upper()
    still_serving(server)


@pytest.mark.slow
@pytest.mark.parametrize("backpressure_model", [*BUFFERED_MODELS, "asyncio", "threads"])
def test_backpressure_bounds_pending_output(backpressure_model, make_server):
    """A client sends fast and never reads: the server stops reading it once about
    ``high_water`` bytes are pending, and later every byte comes back."""
    high_water = 256 * 1024
    server = make_server(backpressure_model, high_water=high_water, sock_buffer_size=SMALL_BUFFER)
    nonblocking = backpressure_model in BUFFERED_MODELS
    with small_buffer_socket(server.address) as sock:
        payload = random_bytes(8 * MiB, seed=5)
        paused = (lambda: server.events.count(PAUSE) > 0) if nonblocking else (lambda: True)
        sent = fill(sock, payload, until=paused)
        # What the server holds: its output buffer (<= high_water + one recv), one recv()'s
        # worth in a reader, and a few small kernel buffers.
        assert sent <= high_water + 2 * server.recv_size + 256 * 1024, sent
        if nonblocking:
            pauses = server.events.events(PAUSE)
            assert pauses, server.events.counts()
            assert max(p.nbytes for p in pauses) <= high_water + server.recv_size
        assert recv_exactly(sock, sent, timeout=30) == payload[:sent].upper()
    if nonblocking:
        assert server.events.count(RESUME) >= 1
    still_serving(server)


# ------------------------------------------------------------------- select: FD_SETSIZE
@pytest.mark.skipif(sys.platform == "win32", reason="descriptor numbers are a POSIX thing")
def test_select_closes_descriptor_beyond_fd_setsize(make_server):
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = FD_SETSIZE + 64
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    server = make_server("select")
    fillers = []
    try:
        # Occupy every free descriptor below FD_SETSIZE (bounded: at most FD_SETSIZE dups), so
        # that the next sockets, the client's and then the accepted one, get numbers above it.
        base = os.open(os.devnull, os.O_RDONLY)
        fillers.append(base)
        while (fd := os.dup(base)) < FD_SETSIZE:
            fillers.append(fd)
        os.close(fd)
        with socket.create_connection(server.address, timeout=10) as high:
            assert high.fileno() >= FD_SETSIZE
            assert wait_until(lambda: server.events.count(CLOSE) >= 1, 10)
            high.settimeout(10)
            try:
                assert high.recv(1) == b""  # closed by the server
            except ConnectionResetError:
                pass
        reasons = [e.detail for e in server.events.events(CLOSE)]
        assert any("FD_SETSIZE" in reason for reason in reasons), reasons
        assert server.running and server.error is None
    finally:
        for fd in fillers:
            os.close(fd)
        if soft != resource.RLIM_INFINITY and soft < needed:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    still_serving(server)
