"""The server lifecycle (nbio_helpers.server) and the registry, for every model.

Start, stop (twice), context manager, default loopback bind, errors that kill a loop, the
registry replacing a server of the same name, stop_all; and nothing left behind after many
start/stop cycles: no thread, no descriptor.
"""

from __future__ import annotations

import gc
import socket
import threading
import warnings

import pytest

from nbio_helpers import (
    MODELS,
    Server,
    ServerStoppedError,
    ServerStopTimeout,
    connect,
    recv_exactly,
    request,
    running_servers,
    start_server,
    stop_all,
)
from nbio_helpers.events import CLOSE, ERROR
from nbio_helpers.server import wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("nothing_left_running")]


def assert_closed(sock: socket.socket) -> None:
    assert sock is None or sock.fileno() == -1, f"{sock} is still open"


def test_default_bind_is_loopback_on_a_free_port(model):
    server = MODELS[model]()
    assert server.host == "127.0.0.1" and server.port == 0
    with server:
        host, port = server.address
        assert host == "127.0.0.1" and port > 0
        assert request(server.address, b"x") == b"X"


def test_context_manager_stops_and_closes_everything(model):
    with MODELS[model]() as server:
        assert server.running
        client = connect(server.address)
        client.sendall(b"hold on")
        assert recv_exactly(client, 7) == b"HOLD ON"
    # stopped while a client was still connected and idle
    assert not server.running
    assert_closed(server.listener)
    assert_closed(server.waker)
    assert server.open_connections() == 0, "accepted sockets left open"
    with client:
        client.settimeout(5)
        try:
            assert client.recv(1) == b""  # the server closed our connection
        except ConnectionResetError:
            pass


def test_stop_twice(server):
    assert request(server.address, b"a") == b"A"
    server.stop()
    server.stop()
    assert not server.running
    assert repr(server).endswith("stopped>")


def test_stop_before_start_is_harmless(model):
    server = MODELS[model]()
    server.stop()
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.address


STALE = r"; run the cell that starts it again"


def test_a_stopped_server_explains_itself(model):
    server = start_server(model, name="stale")
    server.stop()
    with pytest.raises(
        ServerStoppedError,
        match=r"^server 'stale' was stopped \(stop\(\) was called\)" + STALE + "$",
    ):
        _ = server.address
    with pytest.raises(ServerStoppedError, match="cannot be started again"):
        server.start()
    with pytest.raises(ServerStoppedError, match="cannot be started again"):
        with server:
            pass
    assert isinstance(ServerStoppedError("x"), RuntimeError)  # as "not started" is


def test_replaced_and_finished_servers_say_why():
    old = start_server("select", name="demo")
    new = start_server("select", name="demo")
    with pytest.raises(
        ServerStoppedError, match=r"\(a new server named 'demo' replaced it\)" + STALE
    ):
        _ = old.address
    assert request(new.address, b"new") == b"NEW"
    stop_all()
    with pytest.raises(
        ServerStoppedError, match=r"\(finish\(\) or stop_all\(\) stopped every server\)" + STALE
    ):
        _ = new.address


def test_start_twice_raises(server):
    with pytest.raises(RuntimeError, match="already started"):
        server.start()


def test_stop_wakes_an_idle_loop_without_a_client(model):
    """stop() must not wait for a client or a poll timeout: the socketpair wakes the loop."""
    server = start_server(model, name="idle")
    assert wait_until(lambda: server.running, 5)
    server.stop(timeout=5)  # raises ServerStopTimeout if the loop could not be woken
    assert not server.running


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_20_start_stop_cycles_leave_nothing_behind(model, open_fds, nbio_threads):
    def cycle():
        with start_server(model, name="cycle") as server:
            assert request(server.address, b"cycle") == b"CYCLE"
            with connect(server.address) as idle:  # one client still connected at stop()
                idle.sendall(b"z")
                assert recv_exactly(idle, 1) == b"Z"
                server.stop()
                assert nbio_threads() == [], "stop() returned before joining every thread"

    cycle()  # warm up: first imports, lazily created objects
    gc.collect()
    threads_before = threading.active_count()
    fds_before = open_fds()
    # A socket that stop() forgot would still be closed by the garbage collector, with a
    # ResourceWarning: record those, so that "closed by stop()" is what is tested.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(20):
            cycle()
        gc.collect()
    assert threading.active_count() == threads_before, threading.enumerate()
    assert nbio_threads() == []
    assert open_fds() == fds_before
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not unclosed, unclosed[:3]


def test_exception_that_kills_the_loop_is_reraised_by_stop(model):
    class Boom(MODELS[model]):
        def serve(self):
            raise RuntimeError("boom in the loop")

    server = Boom(name="boom").start()
    assert wait_until(lambda: not server.running, 5)
    with pytest.raises(RuntimeError, match="boom in the loop"):
        server.stop()
    assert isinstance(server.error, RuntimeError)
    assert server.events.count(ERROR) == 1
    server.stop()  # raised once; a second stop() is quiet
    assert_closed(server.listener)
    assert "boom" not in running_servers()


def test_exception_inside_a_running_loop(nonblocking_model, monkeypatch):
    """A bug in per-connection code kills the loop; stop() re-raises it in the caller."""
    from nbio_helpers.connection import Connection

    def broken(self):
        raise ValueError("bug in on_readable")

    server = start_server(nonblocking_model, name="buggy")
    monkeypatch.setattr(Connection, "on_readable", broken)
    with connect(server.address, timeout=5) as sock:
        sock.sendall(b"trigger")
        assert wait_until(lambda: not server.running, 5)
    with pytest.raises(ValueError, match="bug in on_readable"):
        server.stop()
    assert isinstance(server.error, ValueError)
    assert server.open_connections() == 0


def test_stop_timeout_when_the_loop_ignores_stop():
    release = threading.Event()

    class Stubborn(Server):
        model = "stubborn"

        def serve(self):
            release.wait(10)  # ignores self.stopping, ends only when the test says so

    server = Stubborn(name="stubborn").start()
    try:
        with pytest.raises(ServerStopTimeout):
            server.stop(timeout=0.05)
    finally:
        release.set()
        server.thread.join(5)
    assert not server.running


def test_non_loopback_host_warns():
    server = MODELS["select"](host="0.0.0.0")
    with pytest.warns(UserWarning, match="reachable from the network"):
        server.start()
    server.stop()


def test_loopback_hosts_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with MODELS["select"](host="localhost") as server:
            assert request(server.address, b"ok") == b"OK"


def test_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = MODELS["selectors"](host="::1").start()
    except OSError as exc:
        pytest.skip(f"cannot bind ::1: {exc}")
    with server:
        assert server.address[0] == "::1"
        assert request(server.address, b"six") == b"SIX"


def test_sock_buffer_size_applies_to_accepted_sockets(model):
    default = socket.socket()
    default_size = default.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    default.close()
    with start_server(model, sock_buffer_size=4096) as server:
        listener_size = server.listener.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert listener_size < default_size
        assert request(server.address, b"small") == b"SMALL"


# ---------------------------------------------------------------------------- registry
def test_same_name_stops_the_old_server(model):
    first = start_server(model, name="demo")
    second = start_server(model, name="demo")
    try:
        assert not first.running
        assert_closed(first.listener)
        assert running_servers() == {"demo": second}
        assert request(second.address, b"new") == b"NEW"
    finally:
        second.stop()
    assert running_servers() == {}


def test_stop_all_leaves_nothing(nbio_threads):
    servers = [start_server(model) for model in MODELS]
    clients = [connect(s.address) for s in servers]
    try:
        for sock in clients:
            sock.sendall(b"x")
            assert recv_exactly(sock, 1) == b"X"
        assert sorted(running_servers()) == sorted(s.name for s in servers)
        stopped = stop_all()
        assert stopped == sorted(s.name for s in servers)
        assert running_servers() == {}
        assert nbio_threads() == []
        for server in servers:
            assert not server.running
            assert_closed(server.listener)
    finally:
        for sock in clients:
            sock.close()


def test_stop_all_does_not_raise_for_a_dead_loop():
    class Boom(MODELS["select"]):
        def serve(self):
            raise RuntimeError("dead")

    server = Boom(name="dead").start()
    assert wait_until(lambda: not server.running, 5)
    assert stop_all() == ["dead"]
    assert isinstance(server.error, RuntimeError)


def test_closed_connections_are_recorded(server):
    assert request(server.address, b"bye") == b"BYE"
    assert wait_until(lambda: server.events.count(CLOSE) >= 1, 5)


def test_a_failed_start_can_be_tried_again(model, open_fds):
    busy = start_server("select", name="busy")
    port = busy.address[1]
    fds = open_fds()
    server = MODELS[model](port=port, name="retry")
    with pytest.raises(OSError):
        server.start()  # the port is taken
    assert open_fds() == fds and "retry" not in running_servers()
    busy.stop()
    with server:  # the same object, the port free now
        assert request(server.address, b"again") == b"AGAIN"
