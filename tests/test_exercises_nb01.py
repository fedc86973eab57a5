"""The checkers of notebook 01 pass the reference solution and fail, with their hint, on the
typical wrong answers: a single recv(n), no timeout (hangs), a timeout per recv() instead of a
deadline, b'' not handled, reading past n; wrong choices of the multiple-choice question; and
the unsolved stub."""
import time

import pytest

from nbio_helpers.exercises import FAIL_PREFIX, NOT_IMPLEMENTED_MESSAGE, PASS_PREFIX
from nbio_helpers.exercises.nb01 import (CHOICES, CLOSE, RIGHT_CHOICE, ScriptedPeer,
                                         check_recv_exactly_timeout,
                                         check_why_second_client_waited)


# ---------------------------------------------------------------- learner versions
def reference(sock, n, timeout):
    """The notebook's solution, verbatim."""
    deadline = time.monotonic() + timeout
    chunks = []
    received = 0
    while received < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"received {received} of {n} bytes in {timeout} s")
        sock.settimeout(left)
        chunk = sock.recv(n - received)      # raises TimeoutError if nothing comes in time
        if not chunk:
            raise ConnectionError(f"the peer closed after {received} of {n} bytes")
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


def single_recv(sock, n, timeout):
    sock.settimeout(timeout)
    return sock.recv(n)


def no_timeout(sock, n, timeout):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def timeout_per_recv(sock, n, timeout):
    sock.settimeout(timeout)
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def ignores_eof(sock, n, timeout):
    deadline = time.monotonic() + timeout
    data = b""
    while len(data) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("too slow")
        sock.settimeout(left)
        data += sock.recv(n - len(data))
    return data


def reads_too_much(sock, n, timeout):
    deadline = time.monotonic() + timeout
    data = b""
    while len(data) < n:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def returns_partial_on_timeout(sock, n, timeout):
    try:
        return reference(sock, n, timeout)
    except TimeoutError:
        return b"partial"


def stub(sock, n, timeout):
    raise NotImplementedError


# ---------------------------------------------------------------- recv_exactly_timeout
@pytest.mark.timeout(30)
def test_reference_passes(capsys):
    assert check_recv_exactly_timeout(reference) is True
    out = capsys.readouterr().out
    assert out.startswith(PASS_PREFIX)
    assert out.count("\n") == 1


@pytest.mark.slow
@pytest.mark.timeout(30)
@pytest.mark.parametrize("wrong, expected_hint", [
    (single_recv, "call it in a loop until you have all n"),
    (no_timeout, "call sock.settimeout(...) before recv()"),
    (timeout_per_recv, "the timeout is for the whole call"),
    (ignores_eof, "raise ConnectionError"),
    (reads_too_much, "recv(n - received)"),
    (returns_partial_on_timeout, "raise TimeoutError"),
])
def test_wrong_answers_fail_with_hint(wrong, expected_hint, capsys):
    assert check_recv_exactly_timeout(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith(FAIL_PREFIX)
    assert "Hint:" in out
    assert expected_hint in out


@pytest.mark.timeout(10)
def test_stub_fails_cleanly(capsys):
    assert check_recv_exactly_timeout(stub) is False
    assert NOT_IMPLEMENTED_MESSAGE in capsys.readouterr().out


def test_not_a_function(capsys):
    assert check_recv_exactly_timeout(b"not a function") is False
    assert "expected a function" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.timeout(10)
def test_hanging_learner_does_not_leave_a_blocked_thread():
    """After the checker gives up on a function blocked in recv(), that thread ends."""
    import threading
    check_recv_exactly_timeout(no_timeout)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if not [t for t in threading.enumerate() if t.name.startswith("learner-")]:
            break
        time.sleep(0.01)
    assert not [t for t in threading.enumerate() if t.name.startswith("learner-")]


@pytest.mark.timeout(10)
def test_scripted_peer_follows_its_script():
    with ScriptedPeer([b"ab", 0.01, b"cd", CLOSE]) as peer:
        peer.sock.settimeout(2.0)
        got = b""
        while True:
            chunk = peer.sock.recv(10)
            if not chunk:
                break
            got += chunk
    assert got == b"abcd"
    assert peer.sock.fileno() == -1 and peer.far.fileno() == -1


@pytest.mark.timeout(10)
def test_scripted_peer_close_frees_a_blocked_recv():
    import threading
    result = []
    with ScriptedPeer() as peer:
        reader = threading.Thread(target=lambda: result.append(peer.sock.recv(10)))
        reader.start()
        time.sleep(0.05)
    reader.join(2.0)
    assert not reader.is_alive() and result == [b""]


# ---------------------------------------------------------------- multiple choice
def test_right_choice_passes(capsys):
    assert check_why_second_client_waited(RIGHT_CHOICE) is True
    out = capsys.readouterr().out
    assert out.startswith(PASS_PREFIX) and "accept()" in out


@pytest.mark.parametrize("spelling", ["b", " B ", "(B)"])
def test_right_choice_spellings(spelling, capsys):
    assert check_why_second_client_waited(spelling) is True


@pytest.mark.parametrize("wrong", [c for c in CHOICES if c != RIGHT_CHOICE])
def test_wrong_choices_fail_with_explanation(wrong, capsys):
    assert check_why_second_client_waited(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith(FAIL_PREFIX) and "Hint:" in out
    assert CHOICES[wrong][1] in out


@pytest.mark.parametrize("nonsense", ["E", "", 2, "B or C"])
def test_not_a_choice(nonsense, capsys):
    assert check_why_second_client_waited(nonsense) is False
    assert "one of the letters" in capsys.readouterr().out


def test_unanswered_fails_cleanly(capsys):
    """In the student edition the answer cell sets ``answer = None``, then raises
    NotImplementedError where the solution was: the checker says there is no answer yet."""
    assert check_why_second_client_waited(None) is False
    out = capsys.readouterr().out
    assert out.startswith(FAIL_PREFIX) and "no answer yet" in out
