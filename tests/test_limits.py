"""Many sockets under macOS's default soft limit of 256 descriptors (simulated with
``setrlimit`` in a child process): the package raises the limit where it opens many."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap

import pytest

from nbio_helpers.limits import ROOM_MARGIN, ensure_fd_room, fd_limit, open_fd_count

resource = pytest.importorskip("resource", reason="descriptor limits are POSIX")
pytestmark = pytest.mark.timeout(120)


def run_with_soft_limit(code: str, soft: int = 256) -> subprocess.CompletedProcess:
    """Run ``code`` in a child Python whose soft RLIMIT_NOFILE is ``soft`` (as on macOS)."""
    prelude = textwrap.dedent(f"""
        import resource
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, hard))
    """)
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=100,
    )


def test_open_fd_count_counts_this_process():
    before = open_fd_count()
    r, w = os.pipe()
    try:
        assert open_fd_count() == before + 2
    finally:
        os.close(r)
        os.close(w)


def test_ensure_fd_room_raises_only_when_needed():
    soft = fd_limit()
    assert ensure_fd_room(0) == soft or ensure_fd_room(0) >= open_fd_count() + ROOM_MARGIN


@pytest.mark.parametrize("model", ["select", "threads", "asyncio"])
def test_200_clients_of_a_server_in_this_process_with_a_256_limit(model):
    done = run_with_soft_limit(f"""
        from nbio_helpers import run_load, start_server
        from nbio_helpers.limits import fd_limit
        with start_server({model!r}) as server:
            result = run_load(server.address, clients=200, messages=3)
        print(result.ok, fd_limit() > 256, result.errors[:2])
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == ["True", "True"], done.stdout


def test_the_load_command_raises_its_own_limit(make_server):
    server = make_server("selectors")
    done = run_with_soft_limit(f"""
        from nbio_helpers.cli.main import main
        raise SystemExit(main(["load", "--port", "{server.address[1]}", "--clients", "300",
                               "--messages", "2"]))
    """)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("300 clients x 2 messages") and ": ok" in done.stdout


def test_a_server_makes_room_for_its_backlog():
    done = run_with_soft_limit("""
        import socket
        from nbio_helpers import start_server
        from nbio_helpers.limits import fd_limit
        with start_server("select") as server:          # the clients: another process
            print(fd_limit() >= server.backlog)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_idle_clients_with_a_256_limit():
    done = run_with_soft_limit("""
        from nbio_helpers import start_server
        from nbio_helpers.measure import idle_clients
        with start_server("selectors") as server:
            with idle_clients(server, clients=200) as socks:
                print(len(socks))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "200"


def test_the_nb04_checker_blames_the_limit_not_the_learner():
    from nbio_helpers.exercises import NotYet
    from nbio_helpers.exercises.nb04 import LearnerLoop

    loop = LearnerLoop(lambda *args: None)
    try:
        loop.error = OSError(errno.EMFILE, "Too many open files")
        with pytest.raises(NotYet) as caught:
            loop.raise_if_failed()
        assert "ran out of file descriptors" in str(caught.value)
        assert "not a mistake in your loop" in caught.value.hint
    finally:
        loop.listener.close()
