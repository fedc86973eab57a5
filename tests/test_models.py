"""One conformance suite, run against every server the package ships that is meant to be
correct (as CPython's test_selectors runs one test class per selector).

The servers are the models of ``MODELS``, ``SelectorsServer`` with each other selector class
this platform has, the classic server of notebook 03 with every flaw fixed, the correct
variants of notebook 04's select server, and the bench's two peers (see :func:`cases`).
Each test runs once per server (the ``case`` fixture), or once per server with the
capability it checks (``concurrent_case``, ``backpressure_case``); what a test asserts about
the event log depends on the capabilities the server declares (``Server``'s docstring:
``logs_connections``, ``buffers_output``, ``backpressure``). After every fault the server
must still answer a fresh client.
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import json
import os
import random
import select
import selectors
import socket
import struct
import sys
import time

import pytest

from nbio_helpers import FD_SETSIZE, MODELS, connect, recv_exactly, request
from nbio_helpers.bench.servers import REFERENCES, ThreadingTCPReference
from nbio_helpers.connection import Connection
from nbio_helpers.events import ACCEPT, CLOSE, EOF, PAUSE, RECV, RESUME, SEND, SEND_WOULD_BLOCK
from nbio_helpers.lessons.nb03 import FLAWS, ClassicServer
from nbio_helpers.lessons.nb04 import AlwaysWritableSelectServer, HeartbeatSelectServer
from nbio_helpers.lessons.nb05 import SlowCallServer, WatchedAsyncioServer
from nbio_helpers.loop.pitfall import PausingEchoServer
from nbio_helpers.models import SelectorsServer
from nbio_helpers.server import Server, wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("nothing_left_running")]

MiB = 1024 * 1024
SMALL_BUFFER = 4096

SELECTOR_CLASSES = (
    "SelectSelector",
    "PollSelector",
    "EpollSelector",
    "DevpollSelector",
    "KqueueSelector",
)
"""Every selector class :mod:`selectors` may have; each one this platform has is tried."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One server of the suite: a Server subclass and the options it is started with."""

    id: str
    cls: type[Server]
    options: dict = dataclasses.field(default_factory=dict)


def cases() -> list[Case]:
    """Every server the suite runs, models first (in teaching order)."""
    found = [Case(name, cls) for name, cls in MODELS.items()]
    default = selectors.DefaultSelector
    for name in SELECTOR_CLASSES:
        selector_class = getattr(selectors, name, None)
        if selector_class is not None and selector_class is not default:  # default: "selectors"
            short = name.removesuffix("Selector").lower()
            found.append(
                Case(f"selectors-{short}", SelectorsServer, {"selector_class": selector_class})
            )
    # The classic server of notebook 03 with every flaw fixed. Its FLAWS subclasses are left
    # out on purpose: each breaks one thing (FLAWS[name].summary says what).
    assert ClassicServer.flaw is None and ClassicServer not in FLAWS.values()
    found.append(Case("classic", ClassicServer))
    # Notebook 04's select variants: both echo correctly. AlwaysWritableSelectServer's flaw
    # is its CPU (select() returns at once, forever: waits_for_readiness = False), which the
    # echo tests do not mind.
    found.append(Case("select-heartbeat", HeartbeatSelectServer))
    found.append(Case("select-always-write", AlwaysWritableSelectServer))
    # Notebook 05's and 06's demos, in the setting that has no pitfall (the pitfall, a
    # blocking call that stalls the loop, happens only for b"slow" and b"!pause" messages).
    found.append(Case("asyncio-watched", WatchedAsyncioServer))
    found.append(Case("asyncio-slow-call", SlowCallServer, {"in_thread": True}))
    found.append(Case("tasks-pausing", PausingEchoServer, {"blocking": False}))
    # Left out: the chat servers of notebook 06 (nbio_helpers.loop: a line protocol, not the
    # echo) and the exercises' servers (they run a learner's code).
    found += [Case(peer.model, peer) for peer in REFERENCES]  # the bench's peers
    return found


CASES = cases()


def params(cases_: list[Case]) -> list:
    """The cases as parameters; the bench's socketserver peer is slow (``slow`` marker):
    its ``serve_forever()`` notices ``shutdown()`` only at its next poll, up to 0.5 s later."""
    return [
        pytest.param(
            case, id=case.id, marks=[pytest.mark.slow] if case.cls is ThreadingTCPReference else []
        )
        for case in cases_
    ]


@pytest.fixture
def start():
    """``start(case, **options)`` -> a started server of ``case``; stopped after the test,
    which fails if ``stop()`` raises (an exception that killed the loop)."""
    started = []

    def make(case: Case, **options) -> Server:
        server = case.cls(**{**case.options, **options}).start()
        started.append(server)
        return server

    yield make
    errors = []
    for server in started:
        try:
            server.stop()
        except BaseException as exc:
            errors.append(f"{server.name}: {type(exc).__name__}: {exc}")
    assert not errors, f"stop() raised: {errors}"


@pytest.fixture(params=params(CASES))
def case(request) -> Case:
    """Each server of the suite in turn."""
    return request.param


def where(**capabilities) -> list:
    """The cases whose classes have these capability values, as parameters of ``case``:
    ``@pytest.mark.parametrize("case", where(concurrent=True))``."""
    return params(
        [c for c in CASES if all(getattr(c.cls, k) == v for k, v in capabilities.items())]
    )


@pytest.fixture
def server(case, start):
    """A started server of each case in turn."""
    return start(case)


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
def test_8mib_with_small_socket_buffers(case, start, exchange):
    """8 MiB through 4 KiB kernel buffers on both ends: byte for byte, partial sends happen."""
    server = start(case, sock_buffer_size=SMALL_BUFFER)
    data = random_bytes(8 * MiB, seed=8)
    echoed = exchange(server.address, data, bufsize=SMALL_BUFFER, timeout=60)
    assert len(echoed) == len(data)
    assert echoed == data.upper()
    if case.cls.buffers_output:
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
def test_500_concurrent_clients(case, server, cli):
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
    if not case.cls.logs_connections:
        return still_serving(server)
    assert wait_until(lambda: server.events.count(EOF) >= 500, 10), server.events.counts()
    assert server.events.count(ACCEPT) == 500
    assert server.events.total_bytes(RECV) == 500 * 20 * 64
    still_serving(server)


# --------------------------------------------------------------------------------- faults
@pytest.mark.parametrize("when", ["mid-message", "idle"])
def test_client_resets(case, server, when):
    """Linger 0 then close: the kernel sends RST. Mid-message, the server's send() or recv()
    fails; on an idle connection, its recv() fails. Either way: close it, serve the rest."""
    sock = connect(server.address)
    if when == "mid-message":
        sock.setblocking(False)
        try:
            sock.send(random_bytes(256 * 1024))  # as much as fits now; never read the echo
        except BlockingIOError:
            pass
    elif case.cls.logs_connections:
        assert wait_until(lambda: server.events.count(ACCEPT) >= 1, 10)
    linger = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    sock.close()  # linger 0: close sends RST, not FIN
    if case.cls.logs_connections:
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
@pytest.mark.parametrize("case", where(concurrent=True, backpressure=True))
def test_client_that_never_reads_does_not_stall_others(case, start):
    server = start(case, sock_buffer_size=SMALL_BUFFER)
    hog = small_buffer_socket(server.address)
    with hog:
        payload = random_bytes(16 * MiB, seed=4)
        stalled = (
            (lambda: server.events.count(PAUSE) > 0) if case.cls.buffers_output else (lambda: True)
        )
        sent = fill(hog, payload, until=stalled)
        assert sent < len(payload), "the server never stopped reading a client that never reads"
        for i in range(3):  # the others are served meanwhile
            assert request(server.address, b"other %d" % i, timeout=10) == b"OTHER %d" % i
        assert recv_exactly(hog, sent, timeout=30) == payload[:sent].upper()
    still_serving(server)


@pytest.mark.slow
@pytest.mark.parametrize("case", where(backpressure=True))
def test_backpressure_bounds_pending_output(case, start):
    """A client sends fast and never reads: the server stops reading it once about
    ``high_water`` bytes are pending, and later every byte comes back."""
    high_water = 256 * 1024
    server = start(case, high_water=high_water, sock_buffer_size=SMALL_BUFFER)
    nonblocking = case.cls.buffers_output
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
POSIX_ONLY = pytest.mark.skipif(
    sys.platform == "win32", reason="descriptor numbers are a POSIX thing"
)


@POSIX_ONLY
@pytest.mark.parametrize("case", where(max_connections=FD_SETSIZE))
def test_select_closes_descriptor_beyond_fd_setsize(case, start):
    refuses_beyond_fd_setsize(start(case))


@POSIX_ONLY
@pytest.mark.skipif(not hasattr(selectors, "SelectSelector"), reason="no SelectSelector")
def test_selectors_over_select_refuses_descriptor_beyond_fd_setsize():
    server = SelectorsServer(selector_class=selectors.SelectSelector).start()
    try:
        refuses_beyond_fd_setsize(server)
    finally:
        server.stop()  # raises what killed the loop, if anything did (select()'s ValueError did)


def refuses_beyond_fd_setsize(server) -> None:
    """A client whose accepted socket gets a descriptor >= FD_SETSIZE is closed (and the
    reason says FD_SETSIZE); the loop goes on serving the others."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = FD_SETSIZE + 64
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
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
            assert wait_until(lambda: server.events.count(CLOSE) >= 1 or not server.running, 10)
            assert server.running and server.error is None, f"the loop died: {server.error!r}"
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


# --------------------------------------------------------------------------- capabilities
CAPABILITIES = [
    name
    for name, kind in Server.__annotations__.items()
    if "ClassVar" in str(kind) and name in vars(Server)
]


def test_every_capability_is_documented_in_servers_docstring():
    assert "model" in CAPABILITIES and "max_connections" in CAPABILITIES
    doc = inspect.cleandoc(Server.__doc__ or "")  # Python 3.13 dedents docstrings itself
    for name in CAPABILITIES:
        assert f"\n{name}: " in doc, f"{name} is not in Server's docstring"


def test_models_are_in_teaching_order():
    assert list(MODELS) == [
        "blocking",
        "threads",
        "polling",
        "select",
        "selectors",
        "asyncio",
        "tasks",
    ]
    assert [cls.taught_in for cls in MODELS.values()] == sorted(
        cls.taught_in for cls in MODELS.values()
    )
    assert all(MODELS[name].model == name for name in MODELS)


@pytest.mark.parametrize("case", params(CASES))
def test_capabilities_agree_with_each_other(case):
    cls = case.cls
    assert cls.concurrent == (cls.max_connections != 1), "concurrent: more than one at a time"
    if cls.waits_for_readiness:
        assert cls.nonblocking, "a loop that waits for readiness has non-blocking sockets"
    if cls.connection_class is not None:
        assert cls.nonblocking and cls.buffers_output  # what a Connection is


def test_the_lists_elsewhere_agree_with_the_capabilities():
    """The names measure.relations and the bench choose must agree with what the models
    declare (EVERY_CONNECTION_MODELS leaves polling out, IDLE_TARGET_SERVERS tasks)."""
    from nbio_helpers.bench.report import IDLE_TARGET_SERVERS
    from nbio_helpers.measure.relations import EVERY_CONNECTION_MODELS, waiting_models

    assert waiting_models() == ("select", "selectors", "asyncio", "tasks")
    assert all(
        MODELS[n].concurrent and MODELS[n].max_connections is None for n in EVERY_CONNECTION_MODELS
    )
    assert all(MODELS[n].waits_for_readiness for n in IDLE_TARGET_SERVERS)


def test_a_module_in_the_models_package_is_all_it_takes(tmp_path, monkeypatch):
    """How a model is added: one module, one class, its attributes; nothing else."""
    import nbio_helpers.models as models

    (tmp_path / "extra_model.py").write_text(
        "from nbio_helpers.models.select_model import SelectServer\n"
        "class ExtraServer(SelectServer):\n"
        "    model = 'extra'\n"
        "    taught_in = (4, 9)\n"
    )
    monkeypatch.setattr(models, "__path__", [*models.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "nbio_helpers.models.extra_model", raising=False)
    try:
        found = models.find_models()
    finally:
        sys.modules.pop("nbio_helpers.models.extra_model", None)
    assert list(found) == [
        "blocking",
        "threads",
        "polling",
        "select",
        "extra",
        "selectors",
        "asyncio",
        "tasks",
    ]


def test_a_subclass_defined_elsewhere_is_not_a_model():
    import nbio_helpers.models as models

    class Mine(SelectorsServer):  # a learner's, in a notebook cell
        model = "mine"
        taught_in = (5, 9)

    assert "mine" not in models.find_models()
    with pytest.raises(ValueError, match="choose one of: blocking, threads, polling, select"):
        models.start_server("mine")


def test_two_models_of_one_name_are_refused(tmp_path, monkeypatch):
    import nbio_helpers.models as models

    (tmp_path / "twin_model.py").write_text(
        "from nbio_helpers.models.select_model import SelectServer\n"
        "class TwinServer(SelectServer):\n"
        "    model = 'select'\n"
        "    taught_in = (4, 9)\n"
    )
    monkeypatch.setattr(models, "__path__", [*models.__path__, str(tmp_path)])
    try:
        with pytest.raises(TypeError, match="two models are named 'select'"):
            models.find_models()
    finally:
        sys.modules.pop("nbio_helpers.models.twin_model", None)


def test_models_with_filters_on_capabilities():
    from nbio_helpers.models import models_with

    assert models_with(concurrent=False) == ["blocking"]
    assert models_with(connection_class=Connection) == ["polling", "select", "selectors"]
    assert models_with(buffers_output=True, backpressure=True) == [
        "polling",
        "select",
        "selectors",
        "tasks",
    ]
    assert models_with() == list(MODELS)
    with pytest.raises(AttributeError):
        models_with(concurent=True)
