"""The client process: started lazily, shared, bounded, errors as exceptions, never left behind."""

import contextlib
import os
import signal
import socket
import sys
import threading

import pytest

from nbio_helpers import SelectServer
from nbio_helpers.measure import (
    ClientProcess,
    ClientProcessError,
    client_process,
    running_client_processes,
    stop_client_processes,
)
from nbio_helpers.ui.notebook import finish

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def no_process_before_or_after():
    stop_client_processes()
    yield
    stop_client_processes()
    assert running_client_processes() == []


@contextlib.contextmanager
def parrot_server():
    """A server that echoes unchanged (not upper-cased), for one connection."""
    listener = socket.create_server(("127.0.0.1", 0))

    def parrot():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    thread = threading.Thread(target=parrot, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()
    finally:
        listener.close()
        thread.join(5)


def test_started_on_first_use_and_shared():
    assert running_client_processes() == []
    first = client_process()
    assert first.alive and running_client_processes() == [first]
    assert client_process() is first  # reused, not one per call
    assert first.request("ping", timeout=30)["pong"] is True


def test_stop_leaves_nothing_and_the_next_use_starts_afresh():
    first = client_process()
    pid = first.pid
    assert stop_client_processes() == 1
    assert not first.alive and first.proc.returncode is not None
    assert running_client_processes() == []
    second = client_process()
    assert second.pid != pid and second.request("ping", timeout=30)["pong"]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_process_that_died_is_replaced():
    first = client_process()
    first.request("ping", timeout=30)
    os.kill(first.pid, signal.SIGKILL)
    first.proc.wait(10)
    second = client_process()
    assert second is not first and second.request("ping", timeout=30)["pong"]
    assert running_client_processes() == [second]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_process_that_dies_during_a_request_is_a_clear_error():
    process = client_process()
    process.request("ping", timeout=30)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # never answers
        process.send(
            "latency", host="127.0.0.1", port=silent.getsockname()[1], requests=1, within=30
        )
        os.kill(process.pid, signal.SIGKILL)
        with pytest.raises(ClientProcessError, match="ended"):
            process.request("ping", timeout=30)
    assert not process.alive


@pytest.mark.slow
def test_a_request_that_times_out_kills_the_process():
    process = client_process()
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts in the backlog only
        host, port = silent.getsockname()
        with pytest.raises(TimeoutError, match=r"did not finish 'latency' within 0\.5 s"):
            process.request("latency", timeout=0.5, host=host, port=port, requests=2, within=30)
    assert not process.alive  # a late reply can never be taken for another
    assert running_client_processes() == []
    assert client_process().request("ping", timeout=30)["pong"]


def test_errors_in_the_child_come_back_as_exceptions():
    process = client_process()
    with parrot_server() as address:
        with pytest.raises(ValueError, match=r"echo mismatch.*in the client process"):
            process.request("latency", timeout=30, host=address[0], port=address[1], requests=2)
    with pytest.raises(TypeError, match="unexpected keyword"):
        process.request("latency", timeout=30, host="127.0.0.1", port=1, nonsense=True)
    with pytest.raises(ClientProcessError, match="unknown command 'no-such'"):
        process.request("no-such", timeout=30)
    with pytest.raises(ConnectionRefusedError):
        with socket.create_server(("127.0.0.1", 0)) as closed:
            port = closed.getsockname()[1]
        process.request("latency", timeout=30, host="127.0.0.1", port=port, requests=1)
    assert process.alive and process.request("ping", timeout=30)["pong"]  # it carries on


def test_requests_from_two_threads_get_their_own_replies():
    process = client_process()
    with SelectServer() as server:
        host, port = server.address
        replies = {}

        def measure(name, requests):
            replies[name] = process.request(
                "latency", timeout=30, host=host, port=port, requests=requests
            )

        threads = [threading.Thread(target=measure, args=(f"t{n}", n)) for n in (3, 7, 11)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert {name: len(r["trials"][0]) for name, r in replies.items()} == {
        "t3": 3,
        "t7": 7,
        "t11": 11,
    }


@pytest.mark.slow
def test_a_process_of_its_own_is_a_context_manager():
    with ClientProcess() as own:
        assert own.request("ping", timeout=30)["pong"]
        assert own in running_client_processes() and own is not client_process()
    assert not own.alive and own not in running_client_processes()


def test_finish_stops_the_client_process(capsys):
    client_process().request("ping", timeout=30)
    with SelectServer(name="finish-me"):
        pass
    finish()
    assert capsys.readouterr().out == "servers running: none\nnbio threads alive: 0\n"
    assert running_client_processes() == []


def test_an_interrupted_request_shows_the_interrupt_and_retires_the_process(monkeypatch):
    process = client_process()
    process.request("ping", timeout=30)

    def interrupted(timeout):
        raise KeyboardInterrupt

    monkeypatch.setattr(process, "reply", interrupted)
    with pytest.raises(KeyboardInterrupt):
        process.request("ping", timeout=30)
    assert not process.alive and running_client_processes() == []
    assert client_process().request("ping", timeout=30)["pong"]


def test_an_interrupted_idle_measurement_releases_its_clients(monkeypatch):
    from nbio_helpers.events import EOF
    from nbio_helpers.measure import idle_cost
    from nbio_helpers.server import wait_until

    def interrupted(*args):
        raise KeyboardInterrupt

    with SelectServer() as server:
        # Ctrl-C in the measurement's first reading, with the clients connected.
        monkeypatch.setattr(server.cpu, "total", interrupted)
        with pytest.raises(KeyboardInterrupt):
            idle_cost(server, clients=3, seconds=0.01)
        assert wait_until(lambda: server.events.count(EOF) == 3, 5)  # released
    assert client_process().request("ping", timeout=30)["pong"]


def test_an_interrupt_that_ends_the_process_is_not_masked(monkeypatch):
    # Ctrl-C in Jupyter reaches the whole process group: the client process ends too.
    from nbio_helpers.measure import idle_cost

    def interrupted(*args):
        client_process().kill()
        raise KeyboardInterrupt

    with SelectServer() as server:
        monkeypatch.setattr(server.cpu, "total", interrupted)  # in the first reading
        with pytest.raises(KeyboardInterrupt):
            idle_cost(server, clients=2, seconds=0.01)
