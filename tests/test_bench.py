"""nbio_helpers.bench: the reference servers, the load process, and a ``bench --quick`` run.

No speed is asserted (machines are noisy): only that every piece runs, every echo is
checked, and the table and the JSON are well formed.
"""

import argparse
import errno
import gc
import json
import re
import socket
import subprocess
import sys

import psutil
import pytest

from nbio_helpers import AsyncioServer, request
from nbio_helpers.bench import (
    SERVERS,
    AsyncioStreamsReference,
    LoadProcess,
    Settings,
    ThreadingTCPReference,
    configure_parser,
    echo_load,
    evaluate_targets,
    format_report,
    hold,
)
from nbio_helpers.server import wait_until

pytestmark = [pytest.mark.alone, pytest.mark.timeout(60)]

REFERENCES = [AsyncioStreamsReference, ThreadingTCPReference]


@pytest.mark.slow
@pytest.mark.parametrize("cls", REFERENCES)
def test_reference_servers_echo_upper_case(cls):
    with cls() as server:
        assert request(server.address, b"hello, bench") == b"HELLO, BENCH"
        big = bytes(range(256)) * 300
        assert request(server.address, big) == big.upper()


@pytest.mark.parametrize("cls", REFERENCES)
def test_reference_servers_stop_at_once_and_twice(cls):
    server = cls().start()
    server.stop()  # right after start: serve() may not have begun yet
    server.stop()
    assert not server.running
    assert server.listener.fileno() == -1


@pytest.mark.slow
@pytest.mark.parametrize("cls", REFERENCES)
def test_reference_servers_stop_with_clients_connected(cls):
    server = cls().start()
    with socket.create_connection(server.address, timeout=5) as idle:
        assert request(server.address, b"x") == b"X"
        server.stop()
        idle.settimeout(5)
        try:
            assert idle.recv(1) == b""
        except ConnectionResetError:
            pass
    assert not server.running


def _echo_load_on_selectors(**settings) -> dict:
    """:func:`echo_load` against a selectors server of this process."""
    server = SERVERS["selectors"][0]().start()
    try:
        host, port = server.address
        return echo_load(host, port, **settings)
    finally:
        server.stop()


def test_echo_load_checks_every_echo_in_process():
    result = _echo_load_on_selectors(clients=5, size=3000, warmup=0.05, duration=0.2)
    assert result["errors"] == []
    assert result["messages"] > 0 and result["clients_served"] == 5
    assert result["median_latency_s"] <= result["tail_latency_s"]


def test_echo_load_reports_a_wrong_echo():
    listener = socket.create_server(("127.0.0.1", 0))
    import threading

    def parrot():  # echoes unchanged: not upper-cased
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    thread = threading.Thread(target=parrot, daemon=True)
    thread.start()
    try:
        host, port = listener.getsockname()
        result = echo_load(host, port, clients=1, size=64, warmup=0.0, duration=0.2)
    finally:
        thread.join(5)
        listener.close()
    assert result["messages"] == 0
    assert any("differs" in e for e in result["errors"])


class _FullOnTheNextMessage(socket.socket):
    """A client socket whose send buffer is full, once, just as a message's echo completes:
    the send of the next message raises BlockingIOError, as it may on any connection."""

    def __init__(self, real: socket.socket):
        super().__init__(real.family, real.type, real.proto, fileno=real.detach())
        self.messages = 0
        self.refused = False

    def recv_into(self, buffer, nbytes=0, flags=0):
        n = super().recv_into(buffer, nbytes, flags)
        self.messages += 1  # (one recv_into per 16-byte echo on loopback)
        return n

    def send(self, data, flags=0):
        if self.messages == 1 and not self.refused:
            self.refused = True
            raise BlockingIOError(errno.EAGAIN, "send buffer full (simulated)")
        return super().send(data, flags)


def test_echo_load_sends_the_next_message_later_when_the_buffer_is_full(monkeypatch):
    # Before the fix, a next message that could not be sent at once was never sent: the
    # client waited for its echo for the rest of the run.
    import nbio_helpers.bench.load as load

    real = socket.create_connection
    monkeypatch.setattr(
        load.socket, "create_connection", lambda *a, **k: _FullOnTheNextMessage(real(*a, **k))
    )
    result = _echo_load_on_selectors(clients=1, size=16, warmup=0.0, duration=0.3)
    assert result["errors"] == []
    assert result["all_messages"] > 2


def test_hold_counts_echoes_and_refusals():
    server = SERVERS["select"][0]().start()
    held = []
    try:
        host, port = server.address
        result = hold(held, host, port, count=20)
    finally:
        for sock in held:
            sock.close()
        server.stop()
    assert result["opened"] == 20 and result["echoed_ok"] == 20
    assert result["refused"] == 0 and result["no_reply"] == 0


def test_load_process_answers_and_ends():
    with LoadProcess() as load:
        assert load.call("ping", timeout=30)["pong"] is True
        assert "error" in load.call("no-such-command", timeout=10)
    assert load.proc.returncode == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["--servers", "nope"],
        ["--servers", ","],
        ["--clients", "0"],
        ["--clients", "25000"],
        ["--seconds", "-1"],
        ["--seconds", "nan"],
        ["--rounds", "0"],
    ],
)
def test_bad_arguments_are_refused(argv, capsys):
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("usage:")


def _fake_results(met: bool) -> dict:
    run = {
        "clients": 10,
        "size": 64,
        "seconds": 1.0,
        "messages": 100,
        "messages_per_second": 100.0,
        "bytes_per_second": 6400.0,
        "clients_served": 10,
        "median_latency_s": 0.001,
        "tail_latency_s": 0.002,
        "tail_name": "p99",
        "errors": [],
    }
    servers = {
        name: {
            "kind": kind,
            "idle": {"cpu_share": 0.0 if met else 0.5},
            "small": dict(run),
            "large": dict(run, size=65536),
        }
        for name, (_, kind) in SERVERS.items()
    }
    return {
        "meta": {"platform": "test", "cpus": 2, "python": "3", "selector": "X"},
        "settings": Settings(quick=True, clients=10).as_dict(),
        "servers": servers,
        "ceiling": {"bytes_per_second": 1e9},
        "connections": {
            "selectors": {
                "asked": 300,
                "opened": 300,
                "echoed_ok": 300,
                "errors": [],
                "fd_limit_before": 1024,
                "fd_limit": 1024,
            }
        },
    }


def test_targets_and_report_from_known_numbers():
    results = _fake_results(met=True)
    results["targets"] = evaluate_targets(results)
    assert [t["met"] for t in results["targets"]] == [True] * 6
    text = format_report(results)
    assert "[met] selectors >= 1.0x ref-asyncio throughput, 64 B: 1.00x" in text
    bad = _fake_results(met=False)
    bad["targets"] = evaluate_targets(bad)
    assert "[MISSED] selectors idle CPU <= 1% of a core: 50.00%" in format_report(bad)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_bench_quick_runs_and_writes_a_table_and_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "nbio_helpers", "bench", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr
    # Progress went to stderr, the table to stdout.
    assert re.search(r"^\[ 1/\d+\] .*loopback ceiling", proc.stderr, re.M)
    assert "done in" in proc.stderr
    table = proc.stdout
    assert "loopback ceiling" in table and "targets:" in table
    rows = {
        line.split()[0]: line for line in table.splitlines() if line and line.split()[0] in SERVERS
    }
    assert set(rows) == set(SERVERS)
    for name, line in rows.items():
        # name, msg/s, ratio, us/msg, p50, p99 (or -), MB/s, ratio, us/msg, % of ceiling,
        # served, idle %
        assert re.match(
            rf"{re.escape(name)}\s+[\d,]+\s+[\d.]+x\s+[\d.]+\s+[\d.]+\s+([\d.]+|-)\s+"
            r"[\d,.]+\s+[\d.]+x\s+[\d.]+\s+[\d.]+%\s+\d+/\d+\s+[\d.]+%",
            line,
        ), line
    assert rows["ref-asyncio"].split()[2] == "1.00x"
    assert re.search(r"select: [\d,]+ connections opened; [\d,]+ served, [\d,]+ refused", table)
    assert len(re.findall(r"^  \[(met|MISSED)\] ", table, re.M)) == 6

    data = json.loads(out.read_text())
    assert set(data) >= {"meta", "settings", "ceiling", "servers", "connections", "targets"}
    assert data["settings"]["quick"] is True
    assert data["ceiling"]["bytes_per_second"] > 0
    for name, entry in data["servers"].items():
        for label in ("small", "large"):
            assert entry[label]["errors"] == [], (name, label, entry[label]["errors"])
            assert entry[label]["messages"] > 0
            assert entry[label]["cpu_us_per_message"] > 0
        assert entry["idle"]["clients"] == data["settings"]["clients"]
    sel = data["connections"]["selectors"]
    assert sel["echoed_ok"] == sel["asked"] == data["settings"]["connections"]
    probe = data["connections"]["select"]
    if "skipped" not in probe:
        assert probe["refused"] > 0 and probe["echoed_ok"] + probe["refused"] == probe["opened"]
    assert all(isinstance(t["met"], bool) for t in data["targets"])


@pytest.mark.slow
def test_compare_every_field_on_a_small_run():
    from nbio_helpers.measure import ComparisonRow, compare, comparison_table

    rows = compare(
        [("blocking", "blocking", {}), ("selectors", "selectors", {})],
        idle_clients=3,
        idle_seconds=0.05,
        requests=3,
        load_seconds=0.05,
        connections=30,
    )
    assert [r.label for r in rows] == ["blocking", "selectors"]
    blocking, sel = rows
    assert all(isinstance(r, ComparisonRow) and r.load_ok for r in rows)
    assert blocking.max_connections == 1 and blocking.tried == 30
    assert blocking.idle_clients == 1  # one client at a time
    assert sel.max_connections == sel.tried == 30
    assert sel.throughput > 0 and sel.median_latency <= sel.tail_latency
    assert sel.tail_name == "max"  # 9 requests: no p90
    table = comparison_table(rows)
    assert table.splitlines()[0].split() == [
        "model",
        "idle",
        "CPU",
        "wake-ups/s",
        "loaded",
        "CPU",
        "median",
        "latency",
        "max",
        "msg/s",
        "connections",
    ]
    assert table.splitlines()[3].endswith("30/30")


def test_echo_load_names_its_tail_by_the_rule():
    result = _echo_load_on_selectors(
        clients=2, size=16, warmup=0.0, duration=0.05, keep_latencies=True
    )
    from nbio_helpers.measure.stats import tail

    assert "p99_latency_s" not in result
    assert (result["tail_name"], result["tail_latency_s"]) == tuple(tail(result["latencies_s"]))


def test_idle_cpu_of_the_bench_is_the_one_idle_measurement():
    from nbio_helpers.bench import idle_cost_entry
    from nbio_helpers.measure import ClientProcess

    with ClientProcess() as load, SERVERS["select"][0]() as server:
        idle = idle_cost_entry(server, load, clients=5, settle=0.1, seconds=0.05)
    assert idle["clients"] == idle["accepted"] == 5
    assert idle["cpu_share"] >= 0 and idle["rounds_per_second"] == 0 and idle["errors"] == []


# ------------------------------------------------------- the package: bench/ modules
def test_the_names_notebooks_and_the_cli_use_stay_importable():
    import nbio_helpers.bench as bench

    for name in (
        "configure_parser",
        "run",
        "main",
        "worker_main",
        "LoadProcess",
        "sequential_echo",
    ):
        assert callable(getattr(bench, name)), name
    assert set(bench.__all__) <= set(dir(bench))


def test_best_round_keeps_the_fastest_round_and_the_lowest_cpu_cost():
    from nbio_helpers.bench.runner import best_round

    runs = [
        {"messages_per_second": 10.0, "cpu_us_per_message": 5.0, "errors": ["a"]},
        {"messages_per_second": 30.0, "cpu_us_per_message": 9.0, "errors": []},
        {"messages_per_second": 20.0, "cpu_us_per_message": None, "errors": ["b"]},
    ]
    best = best_round(runs)
    assert best["messages_per_second"] == 30.0
    assert best["cpu_us_per_message"] == 5.0
    assert best["errors"] == ["a", "b"]
    assert runs[1]["cpu_us_per_message"] == 9.0  # the rounds themselves are left alone


def test_json_ready_replaces_nan_everywhere():
    from nbio_helpers.bench.report import json_ready

    data = {"a": float("nan"), "b": [1.0, float("nan"), {"c": float("nan")}], "d": "x"}
    assert json_ready(data) == {"a": None, "b": [1.0, None, {"c": None}], "d": "x"}
    json.dumps(json_ready(data), allow_nan=False)


def test_report_without_the_reference_shows_no_ratios():
    results = _fake_results(met=True)
    del results["servers"]["ref-asyncio"]
    results["targets"] = evaluate_targets(results)
    rows = [line for line in format_report(results).splitlines() if line.startswith("selectors ")]
    assert len(rows) == 1 and rows[0].split()[2] == "-"


def test_python_m_nbio_helpers_bench_is_the_same_command():
    proc = subprocess.run(
        [sys.executable, "-m", "nbio_helpers.bench", "--servers", "nope"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "unknown server(s) 'nope'" in proc.stderr and proc.stderr.startswith("usage:")


def connection_ends(sock: socket.socket, timeout: float = 5.0) -> bool:
    """Read (and drop) until the peer's EOF or reset; False if it is still open after
    ``timeout`` seconds."""
    sock.settimeout(timeout)
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("cls", [*REFERENCES, AsyncioServer])
@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "just-connected"])
@pytest.mark.filterwarnings("error::ResourceWarning")
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_servers_stop_with_a_client_that_never_reads(cls, accepted):
    """Replies pile up unsent; stop() must wait neither for them nor for the client, and must
    close its socket (no "unclosed transport"), also for a client it was still accepting."""
    server = cls().start()
    with socket.socket() as flooder:
        flooder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        flooder.connect(server.address)
        flooder.setblocking(False)
        sent = 0
        try:
            while sent < 64 * 2**20:
                sent += flooder.send(b"x" * 65536)
        except BlockingIOError:
            pass  # the server takes no more of our bytes: its replies wait for us to read
        if accepted:
            assert wait_until(lambda: server_has_a_client(server), timeout=5)
        server.stop()
        assert connection_ends(flooder)
    assert not server.running
    gc.collect()  # an unclosed socket or transport warns here


def server_has_a_client(server) -> bool:
    """True once ``server`` holds an accepted connection (a descriptor of this process)."""
    port = server.address[1]
    process = psutil.Process()
    connections = getattr(process, "net_connections", process.connections)  # psutil < 6
    return any(
        c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
        for c in connections("tcp")
    )
