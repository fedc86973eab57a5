"""The checkers of notebook 01 pass the reference solution (and other right solutions) and
reject every typical wrong answer, each with a hint that names the mistake.

Exercise 1, ``recv_exactly_timeout(sock, n, timeout)``. The rules its text states, and the
mistakes (each a learner version below: the reference with that one mistake):

* bytes, exactly the ``n`` bytes sent, in order — one ``recv()`` only (``single_recv``); a
  list or a str returned (``returns_list``, ``returns_str``); a bytearray (``returns_bytearray``);
  chunks in the wrong order (``wrong_order``);
* no more than ``n`` bytes read from the socket — ``recv(4096)`` then ``buf[:n]``
  (``reads_ahead_and_slices``, the answer that passed before); ``recv(n)`` every time
  (``recv_n_each_time``);
* returns as soon as it has them — waits for the deadline anyway (``waits_for_the_deadline``);
* the timeout bounds the whole call — no timeout at all (``no_timeout``: hangs); the same
  timeout for each ``recv()`` (``timeout_per_recv``: a trickling peer keeps it waiting);
  ``settimeout(timeout)`` once and the deadline checked only after each ``recv()``
  (``deadline_checked_after_recv``: late when the peer stalls halfway); milliseconds
  instead of seconds (``milliseconds``); half the timeout (``gives_up_early``);
* when the time is up (also between two ``recv()`` calls), ``TimeoutError`` —
  ``settimeout(0)`` (``settimeout_zero_when_time_is_up``: BlockingIOError); a negative
  timeout (``negative_timeout``: ValueError); part of the message returned
  (``returns_partial_on_timeout``) or None (``returns_none_on_timeout``);
* ``ConnectionError`` on ``b''`` — loops on ``b''`` (``ignores_eof``); returns what it has
  (``returns_partial_on_eof``); raises EOFError (``raises_eoferror``);
* a reset is let through — swallowed (``swallows_reset``), turned into TimeoutError
  (``reset_becomes_timeout``, ``catches_everything``) or into RuntimeError
  (``wraps_reset``);
* waits inside ``recv()`` — polls with a short timeout (``polls_with_short_timeouts``), spins
  on a non-blocking socket (``spins_nonblocking``) or on ``select(timeout=0)``
  (``spins_on_select``: caught by its CPU);
* the socket's timeout put back — never (``never_restores``), only on success
  (``restores_only_on_success``), to None instead of what it was (``restores_to_none``).

Hostile code (loops, floods, KeyboardInterrupt, blocking calls...) is in
test_exercises_hostile.py.

Exercise 2, the multiple choice: see the tests at the end (every wrong letter, wrong types,
spellings accepted and refused).
"""

import random
import select
import socket
import sys
import threading
import time

import pytest

from nbio_helpers.exercises import FAIL_PREFIX, NOT_IMPLEMENTED_MESSAGE, PASS_PREFIX
from nbio_helpers.exercises.nb01 import (
    CHOICES,
    HANG_UP,
    RESET,
    RIGHT_CHOICE,
    ScriptedPeer,
    WatchedSocket,
    check_recv_exactly_timeout,
    check_why_second_client_waited,
)


# ---------------------------------------------------------------- learner versions
def reference(sock, n, timeout):
    """The notebook's solution, verbatim."""
    deadline = time.monotonic() + timeout
    chunks = []
    received = 0
    old_timeout = sock.gettimeout()  # the caller's setting, put back at the end
    try:
        while received < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"received {received} of {n} bytes in {timeout} s")
            sock.settimeout(left)
            chunk = sock.recv(n - received)  # raises TimeoutError if nothing comes in time
            if not chunk:
                raise ConnectionError(f"the peer closed after {received} of {n} bytes")
            chunks.append(chunk)
            received += len(chunk)
    finally:
        sock.settimeout(old_timeout)
    return b"".join(chunks)


def exactly(
    sock,
    n,
    timeout,
    *,
    ask=None,
    on_timeout=None,
    on_eof="raise",
    on_reset=None,
    per_recv=None,
    zero_floor=False,
    check_left=True,
    scale=1.0,
    restore="finally",
    combine=b"".join,
    insert_front=False,
    wait_deadline=False,
):
    """The reference with one knob turned: each wrong answer below is one mistake."""
    deadline = time.monotonic() + timeout * scale
    chunks = []
    received = 0
    old = sock.gettimeout()

    def body():
        nonlocal received
        if per_recv is not None:
            sock.settimeout(per_recv(timeout))
        while received < n:
            left = deadline - time.monotonic()
            if check_left and left <= 0:
                raise TimeoutError("too slow")
            if per_recv is None:
                sock.settimeout(max(left, 0) if zero_floor else left)
            try:
                chunk = sock.recv(ask(n, received) if ask else n - received)
            except ConnectionResetError:
                if on_reset is None:
                    raise
                return on_reset(chunks)
            except TimeoutError:
                if on_timeout is None:
                    raise
                return on_timeout(chunks)
            if not chunk:
                if on_eof == "raise":
                    raise ConnectionError("closed")
                if on_eof == "return":
                    return combine(chunks)
                if on_eof == "eoferror":
                    raise EOFError("closed")
                continue  # "ignore"
            if insert_front:
                chunks.insert(0, chunk)
            else:
                chunks.append(chunk)
            received += len(chunk)
        if wait_deadline:
            time.sleep(max(0.0, deadline - time.monotonic()))
        return combine(chunks)

    if restore == "finally":
        try:
            return body()
        finally:
            sock.settimeout(old)
    result = body()
    if restore == "on_success":
        sock.settimeout(old)
    elif restore == "none":
        sock.settimeout(None)
    return result


def single_recv(sock, n, timeout):
    old = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        return sock.recv(n)
    finally:
        sock.settimeout(old)


def no_timeout(sock, n, timeout):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def timeout_per_recv(sock, n, timeout):
    return exactly(sock, n, timeout, per_recv=lambda t: t, check_left=False)


def deadline_checked_after_recv(sock, n, timeout):
    """settimeout(timeout) once; the deadline is checked only after each recv() returned."""
    deadline = time.monotonic() + timeout
    old = sock.gettimeout()
    sock.settimeout(timeout)
    data = b""
    try:
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
            if time.monotonic() > deadline and len(data) < n:
                raise TimeoutError("too slow")
    finally:
        sock.settimeout(old)
    return data


def milliseconds(sock, n, timeout):
    return exactly(sock, n, timeout, per_recv=lambda t: t / 1000, check_left=False)


def gives_up_early(sock, n, timeout):
    return exactly(sock, n, timeout, scale=0.5)


def ignores_eof(sock, n, timeout):
    return exactly(sock, n, timeout, on_eof="ignore")


def returns_partial_on_eof(sock, n, timeout):
    return exactly(sock, n, timeout, on_eof="return")


def raises_eoferror(sock, n, timeout):
    return exactly(sock, n, timeout, on_eof="eoferror")


def reads_ahead_and_slices(sock, n, timeout):
    """recv(4096) and return buf[:n]: the right value, and the next message lost."""
    return exactly(sock, n, timeout, ask=lambda n, got: 4096, combine=lambda c: b"".join(c)[:n])


def recv_n_each_time(sock, n, timeout):
    return exactly(sock, n, timeout, ask=lambda n, got: n)


def returns_partial_on_timeout(sock, n, timeout):
    return exactly(sock, n, timeout, on_timeout=b"".join)


def returns_none_on_timeout(sock, n, timeout):
    return exactly(sock, n, timeout, on_timeout=lambda chunks: None)


def settimeout_zero_when_time_is_up(sock, n, timeout):
    return exactly(sock, n, timeout, zero_floor=True, check_left=False)


def negative_timeout(sock, n, timeout):
    return exactly(sock, n, timeout, check_left=False)


def swallows_reset(sock, n, timeout):
    return exactly(sock, n, timeout, on_reset=b"".join)


def reset_becomes_timeout(sock, n, timeout):
    def timeout_instead(chunks):
        raise TimeoutError("connection problem")

    return exactly(sock, n, timeout, on_reset=timeout_instead)


def wraps_reset(sock, n, timeout):
    def runtime_error(chunks):
        raise RuntimeError("connection problem")

    return exactly(sock, n, timeout, on_reset=runtime_error)


def catches_everything(sock, n, timeout):
    try:
        return reference(sock, n, timeout)
    except Exception:
        raise TimeoutError("something went wrong") from None


def waits_for_the_deadline(sock, n, timeout):
    return exactly(sock, n, timeout, wait_deadline=True)


def returns_bytearray(sock, n, timeout):
    return exactly(sock, n, timeout, combine=lambda chunks: bytearray(b"".join(chunks)))


def returns_list(sock, n, timeout):
    return exactly(sock, n, timeout, combine=list)


def returns_str(sock, n, timeout):
    return exactly(sock, n, timeout, combine=lambda chunks: b"".join(chunks).decode())


def wrong_order(sock, n, timeout):
    return exactly(sock, n, timeout, insert_front=True)


def never_restores(sock, n, timeout):
    return exactly(sock, n, timeout, restore="never")


def restores_only_on_success(sock, n, timeout):
    return exactly(sock, n, timeout, restore="on_success")


def restores_to_none(sock, n, timeout):
    return exactly(sock, n, timeout, restore="none")


def polls_with_short_timeouts(sock, n, timeout):
    """Wakes up every 10 ms to look at the clock: the wait is not in recv()."""
    deadline = time.monotonic() + timeout
    old = sock.gettimeout()
    sock.settimeout(0.01)
    data = b""
    try:
        while len(data) < n:
            if time.monotonic() >= deadline:
                raise TimeoutError("too slow")
            try:
                chunk = sock.recv(n - len(data))
            except TimeoutError:
                continue
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
    finally:
        sock.settimeout(old)
    return data


def spins_nonblocking(sock, n, timeout):
    deadline = time.monotonic() + timeout
    old = sock.gettimeout()
    sock.setblocking(False)
    data = b""
    try:
        while len(data) < n:
            if time.monotonic() >= deadline:
                raise TimeoutError("too slow")
            try:
                chunk = sock.recv(n - len(data))
            except BlockingIOError:
                continue
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
    finally:
        sock.settimeout(old)
    return data


def spins_on_select(sock, n, timeout):
    """A select() that never waits, in a loop: few recv() calls, a whole core busy."""
    deadline = time.monotonic() + timeout
    old = sock.gettimeout()
    sock.setblocking(False)
    data = b""
    try:
        while len(data) < n:
            if time.monotonic() >= deadline:
                raise TimeoutError("too slow")
            if not select.select([sock], [], [], 0)[0]:
                continue
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
    finally:
        sock.settimeout(old)
    return data


def closes_the_socket(sock, n, timeout):
    try:
        return reference(sock, n, timeout)
    finally:
        sock.close()


def stub(sock, n, timeout):
    raise NotImplementedError


# Right answers written differently: they must pass too.
def right_with_bytearray_and_wall_clock(sock, n, timeout):
    deadline = time.time() + timeout
    buf = bytearray()
    old = sock.gettimeout()
    try:
        while len(buf) < n:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("too slow")
            sock.settimeout(left)
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
    finally:
        sock.settimeout(old)
    return bytes(buf)


def right_with_recv_into(sock, n, timeout):
    deadline = time.monotonic() + timeout
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    old = sock.gettimeout()
    try:
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("too slow")
            sock.settimeout(left)
            size = sock.recv_into(view[got:], n - got)
            if not size:
                raise ConnectionError("closed")
            got += size
    finally:
        sock.settimeout(old)
    return bytes(buf)


def right_with_select(sock, n, timeout):
    deadline = time.monotonic() + timeout
    old = sock.gettimeout()
    sock.setblocking(False)
    data = b""
    try:
        while len(data) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                raise TimeoutError("too slow")
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
    finally:
        sock.settimeout(old)
    return data


def right_catching_and_reraising(sock, n, timeout):
    try:
        return reference(sock, n, timeout)
    except TimeoutError as exc:  # the deprecated alias: the same class
        raise TimeoutError(f"gave up: {exc}") from exc


# ---------------------------------------------------------------- recv_exactly_timeout
@pytest.mark.slow
@pytest.mark.timeout(30)
def test_reference_passes(capsys):
    assert check_recv_exactly_timeout.report(reference) is True
    out = capsys.readouterr().out
    assert out.startswith(PASS_PREFIX)
    assert out.count("\n") == 1


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_reference_passes_five_times_in_a_row():
    for _ in range(5):
        verdict = check_recv_exactly_timeout.verdict(reference)
        assert verdict.passed, verdict.text


@pytest.mark.slow
@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "right",
    [
        right_with_bytearray_and_wall_clock,
        right_with_recv_into,
        right_with_select,
        right_catching_and_reraising,
    ],
)
def test_other_right_answers_pass(right):
    verdict = check_recv_exactly_timeout.verdict(right)
    assert verdict.passed, verdict.text


@pytest.mark.timeout(40)
@pytest.mark.parametrize(
    "wrong, in_message, in_hint",
    [
        (single_recv, "returned only", "call it in a loop until you have all n"),
        (returns_list, "returned list", "b''.join(chunks)"),
        (returns_str, "returned str", "b''.join(chunks)"),
        (returns_bytearray, "as a bytearray, not bytes", "return bytes"),
        (wrong_order, "not the ones sent", "in the order recv() returned them"),
        (reads_ahead_and_slices, "read 43 from the socket", "recv(n - received)"),
        (recv_n_each_time, "also read the start of the next message", "recv(n - received)"),
        pytest.param(
            waits_for_the_deadline,
            "returned only after 3.0 s",
            "stop as soon as you have n bytes",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            no_timeout,
            "did not return within",
            "call sock.settimeout(...) before recv()",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            timeout_per_recv,
            "did not return within",
            "the timeout is for the whole call",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            deadline_checked_after_recv,
            "then stalled",
            "the timeout is for the whole call",
            marks=pytest.mark.slow,
        ),
        (milliseconds, "raised TimeoutError with timeout=3", "settimeout() takes seconds"),
        pytest.param(
            gives_up_early,
            "gave up after only",
            "wait for the whole timeout",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            settimeout_zero_when_time_is_up,
            "BlockingIOError",
            "settimeout(0) does not mean",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            negative_timeout,
            "settimeout() refuses a negative time",
            "if left <= 0 raise TimeoutError",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            returns_partial_on_timeout,
            "instead of raising TimeoutError",
            "raise TimeoutError",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            returns_none_on_timeout,
            "returned None instead of raising TimeoutError",
            "raise TimeoutError",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ignores_eof,
            "kept trying until its timeout",
            "raise ConnectionError",
            marks=pytest.mark.slow,
        ),
        (
            returns_partial_on_eof,
            "returned b'cut' instead of raising ConnectionError",
            "raise ConnectionError",
        ),
        (
            raises_eoferror,
            "raised EOFError: closed instead of ConnectionError",
            "raise ConnectionError",
        ),
        (swallows_reset, "reset the connection; your function returned b'cut'", "let it through"),
        (
            reset_becomes_timeout,
            "instead of letting ConnectionResetError through",
            "do not catch ConnectionResetError",
        ),
        (
            wraps_reset,
            "raised RuntimeError: connection problem instead of letting",
            "let it through",
        ),
        (
            catches_everything,
            "at once: a closed connection is not a timeout",
            "do not turn other errors into TimeoutError",
        ),
        (never_restores, "left the socket with a timeout of", "sock.settimeout(old) in a finally:"),
        (
            restores_only_on_success,
            "after the peer closed, your function left the socket",
            "finally:",
        ),
        (
            restores_to_none,
            "left the socket with no timeout (blocking); it was given with a timeout of 30 s",
            "note old = sock.gettimeout()",
        ),
        pytest.param(
            polls_with_short_timeouts,
            "it kept waking up",
            "let recv() do the waiting",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            spins_nonblocking,
            "it kept waking up",
            "let recv() do the waiting",
            marks=pytest.mark.slow,
        ),
        (
            closes_the_socket,
            "closed the socket it was given",
            "never close a socket you were given",
        ),
    ],
)
def test_wrong_answers_are_rejected_with_a_hint_that_names_the_mistake(wrong, in_message, in_hint):
    verdict = check_recv_exactly_timeout.verdict(wrong)
    assert not verdict.passed, verdict.text
    assert in_message in verdict.message, verdict.text
    assert in_hint in verdict.hint, verdict.text


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_the_late_wakeup_check_is_what_catches_settimeout_zero():
    """Without the late first recv() the settimeout(0) mistake passes every other check on a
    quiet machine: the race it loses is real but rare. The check makes it certain. On a
    busy machine the trickling peer may win that race first (seen with four test workers on
    two cores); the verdict then names settimeout(0) too."""
    verdict = check_recv_exactly_timeout.verdict(settimeout_zero_when_time_is_up)
    assert not verdict.passed
    late = "the first recv() returned 9 of 29 bytes only after 0.4 s" in verdict.message
    trickled = verdict.message.startswith("a peer trickled") and (
        "probably with settimeout(0)" in verdict.message
    )
    assert late or trickled, verdict.message


@pytest.mark.timeout(10)
def test_stub_fails_cleanly():
    verdict = check_recv_exactly_timeout.verdict(stub)
    assert not verdict.passed and NOT_IMPLEMENTED_MESSAGE in verdict.text


def test_not_a_function():
    verdict = check_recv_exactly_timeout.verdict(b"not a function")
    assert not verdict.passed and "expected a function" in verdict.text


@pytest.mark.timeout(10)
def test_a_failed_check_prints_one_red_line_when_reported(capsys):
    assert check_recv_exactly_timeout.report(single_recv) is False
    out = capsys.readouterr().out
    assert out.startswith(FAIL_PREFIX) and "Hint:" in out


@pytest.mark.slow
@pytest.mark.timeout(10)
def test_hanging_learner_does_not_leave_a_blocked_thread():
    """After the checker gives up on a function blocked in recv(), that thread ends."""
    check_recv_exactly_timeout.verdict(no_timeout)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if not [t for t in threading.enumerate() if t.name.startswith("learner-")]:
            break
        time.sleep(0.01)
    assert not [t for t in threading.enumerate() if t.name.startswith("learner-")]


# ---------------------------------------------------------------- the peers and the socket
@pytest.mark.timeout(10)
def test_scripted_peer_follows_its_script():
    with ScriptedPeer([b"ab", 0.01, b"cd", HANG_UP]) as peer:
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
    result = []
    with ScriptedPeer() as peer:
        reader = threading.Thread(target=lambda: result.append(peer.sock.recv(10)))
        reader.start()
        time.sleep(0.05)
    reader.join(2.0)
    assert not reader.is_alive() and result == [b""]


@pytest.mark.timeout(10)
def test_scripted_peer_reset_makes_recv_raise_connection_reset():
    with ScriptedPeer() as peer:
        peer.reset()
        assert peer.far.fileno() == -1
        assert select.select([peer.sock], [], [], 2.0)[0]
        with pytest.raises(ConnectionResetError):
            peer.sock.recv(10)
    assert peer.sock.fileno() == -1


@pytest.mark.timeout(10)
def test_scripted_peer_reset_before_start_and_twice():
    peer = ScriptedPeer()
    peer.reset()  # never started: nothing to join
    peer.reset()  # already closed: harmless
    peer.sock.settimeout(2.0)
    with pytest.raises(ConnectionResetError):
        peer.sock.recv(10)
    peer.close()


@pytest.mark.timeout(10)
def test_scripted_peer_reset_in_a_script():
    with ScriptedPeer([b"cut", RESET]) as peer:
        peer.sock.settimeout(2.0)
        if sys.platform.startswith("linux"):  # Linux delivers what arrived before the RST
            assert peer.sock.recv(10) == b"cut"
        with pytest.raises(ConnectionResetError):
            while peer.sock.recv(10):
                pass


@pytest.mark.timeout(10)
def test_watched_socket_counts_reads_and_timeouts():
    with ScriptedPeer([b"abcdef"], watched=True) as peer:
        sock = peer.sock
        assert isinstance(sock, WatchedSocket)
        sock.forget()
        sock.settimeout(2.0)
        assert sock.recv(2, socket.MSG_PEEK) == b"ab"  # looks, consumes nothing
        assert sock.recv(2) == b"ab"
        buf = bytearray(10)
        assert sock.recv_into(buf, 4) == 4
        sock.setblocking(False)
        assert (sock.recv_calls, sock.bytes_read) == (3, 6)
        assert sock.timeouts_set == [2.0, 0.0]


@pytest.mark.timeout(10)
def test_watched_socket_late_return_delays_the_first_data_only():
    with ScriptedPeer([b"ab", 0.05, b"cd"], watched=True) as peer:
        sock = peer.sock
        sock.settimeout(2.0)
        sock.late_return = 0.3
        started = time.monotonic()
        assert sock.recv(1) == b"a"
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        assert sock.recv(1) == b"b"
        assert time.monotonic() - started < 0.2


# ---------------------------------------------------------------- multiple choice
def test_right_choice_passes(capsys):
    assert check_why_second_client_waited.report(lambda: RIGHT_CHOICE) is True
    out = capsys.readouterr().out
    assert out.startswith(PASS_PREFIX) and "accept()" in out


@pytest.mark.parametrize("spelling", ["B", "b", " B ", "(B)", "b)", "B.", "( b )", "B\n"])
def test_right_choice_spellings_pass(spelling):
    assert check_why_second_client_waited.verdict(lambda: spelling).passed
    assert check_why_second_client_waited.verdict(spelling).passed  # answer = "B"


@pytest.mark.parametrize("wrong", [c for c in CHOICES if c != RIGHT_CHOICE])
@pytest.mark.parametrize("case", [str.upper, str.lower])
def test_wrong_choices_fail_with_their_explanation(wrong, case):
    verdict = check_why_second_client_waited.verdict(lambda: case(wrong))
    assert not verdict.passed
    assert verdict.message == f"({wrong}) is not what happened."
    assert CHOICES[wrong][1] in verdict.hint


def prints_the_letter():
    print("B")


@pytest.mark.parametrize(
    "answer, in_message, in_hint",
    [
        (prints_the_letter, "your answer is None", "print() only shows a value"),
        (lambda: None, "your answer is None", 'return "A"'),
        (lambda: 2, "your answer is an int, 2", "letter in quotes"),
        (lambda: True, "your answer is a bool", "letter in quotes"),
        (lambda: b"B", "your answer is bytes, b'B', not a str", "drop the b in front"),
        (lambda: ["B"], "your answer is a list, ['B'], not one letter", "return its letter alone"),
        (lambda: ("B",), "your answer is a tuple", "return its letter alone"),
        (lambda: "", "an empty string", 'return "A"'),
        (lambda: "   ", "an empty string", 'return "A"'),
        (lambda: "E", "E is not one of the choices: they are A, B, C, D", 'return "A"'),
        (lambda: "e)", "E is not one of the choices", 'return "A"'),
        (lambda: "B or C", "names several choices (B, C)", "return its letter alone"),
        (lambda: "BC", "names several choices (B, C)", "return its letter alone"),
        (lambda: "b, d", "names several choices (B, D)", "return its letter alone"),
        (lambda: CHOICES["B"][0], "the text of a choice, not its letter", "the letter in front"),
        (
            lambda: CHOICES["A"][0].lower(),
            "the text of a choice, not its letter",
            "the letter in front",
        ),
        (lambda: "Answer: B", "'Answer: B', is not a letter", "the letter alone"),
        (lambda: "B because the server was blocked", "is not a letter", "the letter alone"),
    ],
)
def test_answers_that_are_not_one_letter_are_refused_with_what_is_wrong(
    answer, in_message, in_hint
):
    verdict = check_why_second_client_waited.verdict(answer)
    assert not verdict.passed, verdict.text
    assert in_message in verdict.message, verdict.text
    assert in_hint in verdict.hint, verdict.text


def test_an_answer_that_changes_between_calls_is_refused():
    letters = iter("BD")
    verdict = check_why_second_client_waited.verdict(lambda: next(letters))
    assert not verdict.passed
    assert "returned 'B', then 'D': not the same answer twice" in verdict.message


def test_a_random_guess_never_passes_as_a_fixed_answer():
    rng = random.Random(1)
    passed = sum(
        check_why_second_client_waited.verdict(lambda: rng.choice("ABCD")).passed for _ in range(40)
    )
    assert passed <= 40 // 4 + 5  # only when both calls happen to say B (1 in 16)


def test_an_answer_that_raises_is_named():
    def answer():
        raise ValueError("oops")

    verdict = check_why_second_client_waited.verdict(answer)
    assert not verdict.passed and "raised ValueError: oops" in verdict.text


def test_the_stub_is_not_done_yet():
    def answer():
        raise NotImplementedError()

    verdict = check_why_second_client_waited.verdict(answer)
    assert not verdict.passed and NOT_IMPLEMENTED_MESSAGE in verdict.text
