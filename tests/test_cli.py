"""The command line, run as subprocesses: serve, client, load, bad arguments, signals."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys

import pytest

from nbio_helpers import MODELS, connect, recv_exactly, request
from nbio_helpers.cli.main import OPTIONAL_COMMANDS, build_parser, main

CLI = [sys.executable, "-m", "nbio_helpers"]

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("nothing_left_running")]

POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def talk(argv: list[str], data: bytes, timeout: float = 20) -> bytes:
    """Run a client command with ``data`` on its stdin; return its stdout (asserting exit 0)."""
    done = subprocess.run(argv, input=data, capture_output=True, timeout=timeout)
    assert done.returncode == 0, (argv, done.stderr)
    assert done.stderr == b"", (argv, done.stderr)
    return done.stdout


def openbsd_nc() -> list[str] | None:
    """``nc -N`` (OpenBSD netcat: half-close at end of input, then read the rest) or None."""
    if not shutil.which("nc"):
        return None
    usage = subprocess.run(["nc", "-h"], capture_output=True, timeout=10)
    return ["nc", "-N"] if re.search(rb"\[-\w*N", usage.stdout + usage.stderr) else None


def client_command(kind: str, host: str, port: int) -> list[str]:
    if kind == "nbio":
        return [*CLI, "client", "--host", host, "--port", str(port)]
    if kind == "nc":
        nc = openbsd_nc()
        if nc is None:
            pytest.skip("OpenBSD netcat (nc -N) is not installed")
        return [*nc, host, str(port)]
    if not shutil.which("socat"):
        pytest.skip("socat is not installed")
    # -t: after the end of input, wait up to 10 s for the server to finish and close.
    return ["socat", "-t", "10", "-", f"TCP:{host}:{port}"]


@pytest.mark.parametrize(
    "client",
    [
        "nbio",
        pytest.param("nc", marks=pytest.mark.slow),
        pytest.param("socat", marks=pytest.mark.slow),
    ],
)
def test_serve_every_model_answers_clients_through_a_pipe(model, client, serve_cli):
    served = serve_cli("--model", model, "--port", 0)
    host, port = served.address
    assert served.first_line == f"listening on 127.0.0.1:{port}\n"

    lines = b"hello\nw\xc3\xb6rld\n\nbytes \xff\x00 too\nlast line, no newline"
    assert talk(client_command(client, host, port), lines) == lines.upper()

    _, err = served.finish(signal.SIGINT)
    assert served.proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.slow
@POSIX_ONLY
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_serve_cleanly(signum, serve_cli):
    served = serve_cli("--model", "select", "--port", 0)
    with connect(served.address) as client:  # a client still connected at the end
        client.sendall(b"ping")
        assert recv_exactly(client, 4) == b"PING"
        _out, err = served.finish(signum)
        assert served.proc.returncode == 0, err
        assert "Traceback" not in err and "stopped" in err
        try:
            assert client.recv(1) == b""  # every socket was closed
        except ConnectionResetError:
            pass


def test_serve_polling_interval(serve_cli):
    served = serve_cli("--model", "polling", "--interval", "0.001", "--port", 0)
    assert request(served.address, b"slow poll") == b"SLOW POLL"
    served.finish()
    assert served.proc.returncode == 0


@pytest.mark.slow
def test_serve_warns_when_not_loopback(serve_cli):
    served = serve_cli("--model", "select", "--host", "0.0.0.0", "--port", 0)
    assert served.first_line.startswith("listening on 0.0.0.0:")
    assert request(("127.0.0.1", served.address[1]), b"lan") == b"LAN"
    _, err = served.finish()
    assert served.proc.returncode == 0
    warning = [line for line in err.splitlines() if "reachable from the network" in line]
    assert len(warning) == 1 and warning[0].startswith("warning: 0.0.0.0"), err


@pytest.mark.slow
def test_serve_loopback_does_not_warn(serve_cli):
    served = serve_cli("--model", "select", "--port", 0)
    _, err = served.finish()
    assert "warning" not in err.lower()


@pytest.mark.slow
def test_serve_port_in_use(cli, make_server):
    busy = make_server("select")
    done = cli("serve", "--model", "select", "--port", busy.address[1])
    assert done.returncode == 1
    assert done.stderr.decode().startswith("nbio serve: cannot listen on 127.0.0.1:")
    assert done.stderr.count(b"\n") == 1


def test_client_refused_is_one_line_exit_1(cli, make_server):
    server = make_server("select")
    port = server.address[1]
    server.stop()  # nobody listens there now
    done = cli("client", "--port", port, input=b"hello\n")
    assert done.returncode == 1 and done.stdout == b""
    assert done.stderr.count(b"\n") == 1 and b"refused" in done.stderr


@pytest.mark.slow
def test_load_json(cli, make_server):
    server = make_server("selectors")
    done = cli("load", "--port", server.address[1], "--clients", 10, "--messages", 5, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] and summary["completed"] == 50


@pytest.mark.slow
def test_load_text_summary(cli, make_server):
    server = make_server("select")
    done = cli("load", "--port", server.address[1], "--clients", 5, "--messages", 3)
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert ": ok" in text and "messages/s" in text and "median latency" in text
    assert "max latency" in text and "p99" not in text  # 15 echoes cannot name a p99


@pytest.mark.slow
def test_load_failure_exits_1(cli, make_server):
    server = make_server("select")
    port = server.address[1]
    server.stop()
    done = cli("load", "--port", port, "--clients", 2, "--messages", 1, "--json", "--timeout", 5)
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert summary["ok"] is False and summary["median_latency_s"] is None


BAD_ARGUMENTS = [
    [],
    ["nonsense"],
    ["serve"],  # --model is required
    ["serve", "--model", "nope"],
    ["serve", "--model", "select", "--port", "99999"],
    ["serve", "--model", "select", "--port", "eighty"],
    ["serve", "--model", "select", "--interval", "0.1"],  # polling only
    ["serve", "--model", "polling", "--interval", "-1"],
    ["client", "--port"],
    ["client", "--timeout", "nan"],
    ["load", "--clients", "0"],
    ["load", "--size", "-5"],
]


@pytest.mark.parametrize("argv", BAD_ARGUMENTS, ids=lambda a: " ".join(a) or "nothing")
def test_bad_arguments_exit_2_with_usage(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage:") and "error:" in err


@pytest.mark.slow
def test_bad_arguments_as_a_subprocess(cli):
    done = cli("serve", "--model", "nope")
    assert done.returncode == 2
    assert done.stderr.startswith(b"usage:") and b"invalid choice" in done.stderr


@pytest.mark.slow
def test_help_and_version(cli):
    done = cli("--help")
    assert done.returncode == 0
    for command in ("serve", "client", "load"):
        assert command.encode() in done.stdout
    assert cli("--version").stdout.startswith(b"nbio_helpers ")


def test_serve_help_lists_every_model(capsys):
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in MODELS)


OPTIONAL_MODULES = {module for module, _ in OPTIONAL_COMMANDS.values()}


def pretend_modules(monkeypatch, present: set[str]) -> None:
    """Make the CLI see exactly ``present`` among the optional commands' modules."""
    import importlib.util

    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        if name in OPTIONAL_MODULES:
            return object() if name in present else None
        return real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_optional_commands_absent_without_their_module(monkeypatch, capsys):
    pretend_modules(monkeypatch, present=set())
    assert main(["bench"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert "bench" not in build_parser([]).format_help()


def test_optional_command_module_contract(monkeypatch):
    """A present module gets configure_parser(parser) and run(args) -> exit code."""
    import types

    fake = types.ModuleType("nbio_helpers.bench")
    fake.configure_parser = lambda parser: parser.add_argument("--quick", action="store_true")
    fake.run = lambda args: 7 if args.quick else 0
    monkeypatch.setitem(sys.modules, "nbio_helpers.bench", fake)  # import_module finds it
    pretend_modules(monkeypatch, present={"nbio_helpers.bench"})
    assert "bench" in build_parser([]).format_help()
    assert main(["bench", "--quick"]) == 7
    assert main(["bench"]) == 0


def test_console_script_is_declared():
    tomllib = pytest.importorskip("tomllib")
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["nbio"] == "nbio_helpers.cli.main:main"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB: Linux")
@pytest.mark.timeout(120)
def test_client_a_50_mb_line_comes_back_exact_in_bounded_memory(make_server):
    """It reads while it sends: a line longer than every buffer on the way cannot deadlock,
    and it holds a chunk at a time, not the line."""
    import hashlib
    import os
    import threading

    server = make_server("selectors")

    def run(size: int):
        # The line is made after the fork: the child's ru_maxrss counts what it inherited.
        proc = subprocess.Popen(
            [*CLI, "client", "--port", str(server.address[1])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        block, expected = b"abcdefghij" * 100_000, hashlib.sha256()

        def feed():
            left = size
            while left > 0:
                piece = block[:left]
                left -= len(piece)
                expected.update(piece.upper())
                proc.stdin.write(piece)
            proc.stdin.write(b"\n")
            expected.update(b"\n")
            proc.stdin.close()

        feeder = threading.Thread(target=feed)
        feeder.start()
        got = hashlib.sha256()
        while chunk := proc.stdout.read(1 << 20):
            got.update(chunk)
        err = proc.stderr.read()
        feeder.join()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        return proc.returncode, got.digest() == expected.digest(), usage.ru_maxrss, err

    code, exact, small_rss, err = run(10)
    assert (code, exact, err) == (0, True, b"")
    code, exact, big_rss, err = run(50_000_000)
    assert (code, exact, err) == (0, True, b""), err
    assert big_rss < small_rss + 20 * 1024, (small_rss, big_rss)  # KiB: far below 50 MB
