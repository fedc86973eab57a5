"""Clients (nbio_helpers.clients) and the terminal client (nbio_helpers.cli.terminal),
in-process."""

from __future__ import annotations

import io
import socket
import sys
import threading

import pytest

from nbio_helpers import LoadResult, connect, recv_exactly, request, run_load
from nbio_helpers.cli.terminal import format_address, terminal_client

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("nothing_left_running")]


@pytest.fixture
def select_server(make_server):
    return make_server("select")


@pytest.fixture
def free_port():
    """A port that nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def rude_server():
    """A listener that accepts one client, reads ``n`` bytes, then closes without replying.
    Yields ``start(n) -> address``."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    threads = []

    def start(n: int = 1):
        def serve():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                got = 0
                while got < n:
                    piece = conn.recv(n - got)
                    if not piece:
                        break
                    got += len(piece)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return listener.getsockname()

    yield start
    listener.close()
    for thread in threads:
        thread.join(10)


# -------------------------------------------------------------------------- request & co
def test_request_round_trip(select_server):
    assert request(select_server.address, b"abc") == b"ABC"


def test_request_refuses_text(select_server):
    with pytest.raises(TypeError, match="bytes"):
        request(select_server.address, "text")


def test_connect_sets_the_timeout(select_server):
    with connect(select_server.address, timeout=2.5) as sock:
        assert sock.gettimeout() == 2.5


def test_recv_exactly_times_out_with_what_it_got(select_server):
    with connect(select_server.address) as sock:
        sock.sendall(b"abc")
        with pytest.raises(TimeoutError, match="received 3 of 10 bytes"):
            recv_exactly(sock, 10, timeout=0.3)
        assert sock.gettimeout() == 5.0  # restored


def test_recv_exactly_reports_an_early_close(rude_server):
    with connect(rude_server(1)) as sock:
        sock.sendall(b"x")
        with pytest.raises(ConnectionError, match="peer closed after 0 of 4 bytes"):
            recv_exactly(sock, 4)


# ------------------------------------------------------------------------------- run_load
def test_run_load_checks_every_echo(select_server):
    result = run_load(select_server.address, clients=20, messages=10, size=100)
    assert isinstance(result, LoadResult)
    assert result.ok, result.errors
    assert result.completed == 200 and len(result.latencies) == 200
    assert result.messages_per_second > 0
    slow = result.tail_latency
    assert slow.name == "p90" and 0 < result.median_latency <= slow.value  # 200 echoes
    assert result.p99_latency != result.p99_latency  # nan: 200 echoes cannot name a p99
    summary = result.summary()
    assert summary["ok"] is True and summary["completed"] == 200
    assert (summary["tail_name"], summary["tail_latency_s"]) == tuple(slow)


def test_run_load_reports_a_refused_connection(free_port):
    result = run_load(("127.0.0.1", free_port), clients=3, messages=2, timeout=10)
    assert not result.ok
    assert result.completed == 0
    assert len(result.errors) == 3 and all(
        "refused" in e.lower() or "ECONNREFUSED" in e for e in result.errors
    ), result.errors


def test_run_load_detects_a_server_that_closes(rude_server):
    result = run_load(rude_server(64), clients=1, messages=3, size=64, timeout=10)
    assert not result.ok
    assert "closed the connection" in result.errors[0]


def test_run_load_rejects_nonsense():
    with pytest.raises(ValueError):
        run_load(("127.0.0.1", 9), clients=0)


# ------------------------------------------------------------------------ terminal client
def text_stream(data: bytes) -> io.TextIOWrapper:
    """Like sys.stdin/sys.stdout when piped: text on top of a binary ``.buffer``."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="strict")


def run_terminal(address, data: bytes, **kwargs):
    stdin, stdout, stderr = text_stream(data), text_stream(b""), io.StringIO()
    code = terminal_client(address, stdin=stdin, stdout=stdout, stderr=stderr, **kwargs)
    stdout.flush()
    return code, stdout.buffer.getvalue(), stderr.getvalue()


def test_terminal_client_echoes_each_line_then_ends_on_eof(select_server):
    code, out, err = run_terminal(
        select_server.address, b"hello\n\nw\xc3\xb6rld\n\xff\x00 raw bytes\nno newline"
    )
    assert (code, err) == (0, "")
    assert out == b"HELLO\n\nW\xc3\xb6RLD\n\xff\x00 RAW BYTES\nNO NEWLINE"


def test_terminal_client_with_empty_input(select_server):
    assert run_terminal(select_server.address, b"") == (0, b"", "")


def test_terminal_client_shows_a_prompt_when_asked(select_server):
    code, out, _ = run_terminal(select_server.address, b"hi\n", prompt=True)
    assert code == 0
    assert out == b"> HI\n> \n"


def test_terminal_client_says_how_to_end_input_on_this_os(select_server, monkeypatch):
    from nbio_helpers.cli import terminal

    code, _, err = run_terminal(select_server.address, b"", prompt=True)
    assert code == 0 and f"type lines, {terminal.END_OF_INPUT} to end" in err
    expected = "Ctrl-Z then Enter" if sys.platform == "win32" else "Ctrl-D"
    assert expected == terminal.END_OF_INPUT


def test_terminal_client_no_prompt_when_piped(select_server):
    _, out, _ = run_terminal(select_server.address, b"hi\n")  # BytesIO is not a tty
    assert b">" not in out


def test_terminal_client_works_on_plain_text_streams(select_server):
    stdout, stderr = io.StringIO(), io.StringIO()
    code = terminal_client(
        select_server.address, stdin=io.StringIO("abc\n"), stdout=stdout, stderr=stderr
    )
    assert (code, stdout.getvalue(), stderr.getvalue()) == (0, "ABC\n", "")


def test_terminal_client_refused(free_port):
    code, out, err = run_terminal(("127.0.0.1", free_port), b"hello\n")
    assert code == 1 and out == b""
    assert err.count("\n") == 1
    assert err.startswith(f"nbio client: cannot connect to 127.0.0.1:{free_port}")
    assert "refused" in err


def test_terminal_client_dropped_connection(rude_server):
    code, out, err = run_terminal(rude_server(3), b"hi\n")
    assert code == 1 and out == b""
    assert err.count("\n") == 1 and "connection to" in err and "lost" in err, err


def test_terminal_client_no_reply(make_server):
    server = make_server("blocking", delay=3)  # answers, but too late
    code, _, err = run_terminal(server.address, b"slow\n", timeout=0.3)
    assert code == 1
    assert err.count("\n") == 1 and "no reply" in err, err


def test_format_address():
    assert format_address(("127.0.0.1", 8080)) == "127.0.0.1:8080"
    assert format_address(("::1", 8080, 0, 0)) == "[::1]:8080"
