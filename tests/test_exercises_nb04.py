"""The checkers of notebook 04 pass the reference solution and fail, with a hint that names
the mistake, on every typical wrong answer of exercise 1 (one per test; the rules and the
stage that enforces each are listed in the docstring of ``nbio_helpers.exercises.nb04``):

* write interest always (idle sockets in wlist: it spins); ``timeout=0`` (it spins);
* a short sleep, then every socket tried (rounds shorter than the timeout);
* a wait that spins on the clock (CPU while idle);
* the timeout slept out, then every socket tried, no ``select()`` (replies late);
* accepted sockets left blocking (a client that does not read freezes the loop);
* a ``ConnectionError`` from ``recv()``/``send()`` not caught (the loop dies on a reset);
* partial sends dropped (bytes lost); ``b''`` not handled (connections leak);
* closing on ``b''`` with replies pending (``finished`` unused: the old reference);
* ``finished`` kept in rlist (spins); ``finished`` never closed (the stream never ends);
* the stub, a crash, not a function; and the prediction questions.
"""

import select
import threading
import time

import pytest

from nbio_helpers.exercises import FAIL_PREFIX, PASS_PREFIX
from nbio_helpers.exercises.nb04 import QUESTIONS, check_prediction, check_select_round


# ---------------------------------------------------------------- learner versions
def reference(listener, outbufs, finished, timeout):
    """The notebook's solution, verbatim."""

    def drop(sock):  # the client is gone: forget it and close
        del outbufs[sock]
        finished.discard(sock)
        sock.close()

    rlist = [listener] + [sock for sock in outbufs if sock not in finished]
    wlist = [sock for sock, pending in outbufs.items() if pending]  # only with output pending
    readable, writable, _ = select.select(rlist, wlist, [], timeout)
    for sock in readable:
        if sock is listener:
            try:
                client, _ = listener.accept()
            except (BlockingIOError, ConnectionError):  # readiness is a hint
                continue
            client.setblocking(False)  # accepted sockets may start blocking
            outbufs[client] = bytearray()
            continue
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            continue
        except ConnectionError:  # reset: nobody to send to any more
            drop(sock)
            continue
        if data:
            outbufs[sock] += data.upper()
        elif outbufs[sock]:  # b'': it sends no more, but still reads
            finished.add(sock)  # stop reading it; close once its buffer is empty
        else:
            drop(sock)
    for sock in writable:
        if sock not in outbufs:  # dropped above, in this same turn
            continue
        try:
            sent = sock.send(outbufs[sock])
        except BlockingIOError:
            continue
        except ConnectionError:
            drop(sock)
            continue
        del outbufs[sock][:sent]  # keep what send() did not take
        if sock in finished and not outbufs[sock]:
            drop(sock)  # every byte sent: now close


def make_variant(
    *,
    write_always=False,
    drop_partial=False,
    ignore_eof=False,
    close_on_eof=False,
    finished_in_rlist=False,
    never_close_finished=False,
    blocking_clients=False,
    uncaught_reset=False,
    timeout_of=None,
):
    """The reference with one typical mistake switched on."""

    def variant(listener, outbufs, finished, timeout):
        def drop(sock):
            del outbufs[sock]
            finished.discard(sock)
            sock.close()

        if timeout_of is not None:
            timeout = timeout_of(timeout)
        rlist = [listener] + [s for s in outbufs if finished_in_rlist or s not in finished]
        wlist = list(outbufs) if write_always else [s for s, p in outbufs.items() if p]
        readable, writable, _ = select.select(rlist, wlist, [], timeout)
        for sock in readable:
            if sock is listener:
                try:
                    client, _ = listener.accept()
                except (BlockingIOError, ConnectionError):
                    continue
                if not blocking_clients:
                    client.setblocking(False)
                outbufs[client] = bytearray()
                continue
            if sock not in outbufs:
                continue
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionError:
                if uncaught_reset:
                    raise
                drop(sock)
                continue
            if data:
                outbufs[sock] += data.upper()
            elif ignore_eof:
                pass
            elif outbufs[sock] and not close_on_eof:
                finished.add(sock)
            else:
                drop(sock)
        for sock in writable:
            if sock not in outbufs:
                continue
            try:
                sent = sock.send(outbufs[sock])
            except BlockingIOError:
                continue
            except ConnectionError:
                if uncaught_reset:
                    raise
                drop(sock)
                continue
            if drop_partial:
                outbufs[sock].clear()
            else:
                del outbufs[sock][:sent]
            if sock in finished and not outbufs[sock] and not never_close_finished:
                drop(sock)

    return variant


def poll_every_socket(listener, outbufs, finished):
    """One polling round over every socket, without select(): what a sleeper does after its
    sleep (the reference's steps 2-4, each socket tried, BlockingIOError = nothing)."""
    while True:
        try:
            client, _ = listener.accept()
        except (BlockingIOError, ConnectionError):
            break
        client.setblocking(False)
        outbufs[client] = bytearray()
    for sock in list(outbufs):
        if sock not in finished:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                data = None
            except ConnectionError:
                data = b""
                outbufs[sock].clear()
            if data:
                outbufs[sock] += data.upper()
            elif data == b"":
                if outbufs[sock]:
                    finished.add(sock)
                else:
                    del outbufs[sock]
                    finished.discard(sock)
                    sock.close()
                    continue
        if outbufs[sock]:
            try:
                del outbufs[sock][: sock.send(outbufs[sock])]
            except BlockingIOError:
                pass
            except ConnectionError:
                outbufs[sock].clear()
        if sock in finished and not outbufs[sock]:
            del outbufs[sock]
            finished.discard(sock)
            sock.close()


def sleeps_then_polls(listener, outbufs, finished, timeout):
    """The issue's example: sleeps `timeout`, then tries every socket; never calls select()."""
    time.sleep(timeout)
    poll_every_socket(listener, outbufs, finished)


def naps_then_polls(listener, outbufs, finished, timeout):
    """Sleeps a short fixed time (not the timeout), then tries every socket."""
    time.sleep(0.005)
    poll_every_socket(listener, outbufs, finished)


def waits_on_the_clock(listener, outbufs, finished, timeout):
    """Spins until `timeout` has passed, then polls: few rounds, but a full core."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pass
    poll_every_socket(listener, outbufs, finished)


def stub(listener, outbufs, finished, timeout):
    raise NotImplementedError


def no_learner_threads_left():
    return not [
        t
        for t in threading.enumerate()
        if t.name.startswith("learner-select-loop") and t.is_alive()
    ]


def rejected(fn):
    verdict = check_select_round.verdict(fn)
    assert not verdict.passed, verdict.text
    assert verdict.hint, verdict.text
    assert no_learner_threads_left()
    return verdict


# ---------------------------------------------------------------- select_round
@pytest.mark.slow
@pytest.mark.timeout(60)
def test_reference_passes(capsys):
    assert check_select_round.report(reference) is True
    assert capsys.readouterr().out.startswith(PASS_PREFIX)
    assert no_learner_threads_left()


@pytest.mark.timeout(60)
def test_idle_sockets_in_wlist_spin():
    verdict = rejected(make_variant(write_always=True))
    assert "it spins" in verdict.message and "wlist" in verdict.hint


@pytest.mark.timeout(60)
def test_a_zero_timeout_spins_and_the_hint_says_so():
    verdict = rejected(make_variant(timeout_of=lambda timeout: 0))
    assert "it spins" in verdict.message and "timeout" in verdict.hint


@pytest.mark.timeout(60)
def test_a_short_nap_then_trying_every_socket_is_polling():
    verdict = rejected(naps_then_polls)
    assert "more often than its timeout" in verdict.message
    assert "polling" in verdict.hint and "select.select" in verdict.hint


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_sleeping_the_timeout_then_polling_without_select_answers_late():
    verdict = rejected(sleeps_then_polls)
    assert "late" in verdict.message and "sleeps, then tries every socket" in verdict.message
    assert "select.select(rlist, wlist, [], timeout)" in verdict.hint
    assert "instead of sleeping" in verdict.hint


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_blocking_client_socket_lets_a_quiet_client_freeze_the_loop():
    verdict = rejected(make_variant(blocking_clients=True))
    assert "held up your loop" in verdict.message or "did not return" in verdict.message
    assert "non-blocking" in verdict.hint


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_reset_not_caught_is_named():
    verdict = rejected(make_variant(uncaught_reset=True))
    assert "reset" in verdict.message and "ConnectionError" in verdict.hint


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_dropping_the_rest_of_a_partial_send_loses_bytes():
    verdict = rejected(make_variant(drop_partial=True))
    assert "the rest was lost" in verdict.message and "send() may take only part" in verdict.hint


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_ignoring_b_empty_leaks_connections():
    verdict = rejected(make_variant(ignore_eof=True))
    assert "the connections leak" in verdict.message and "b''" in verdict.hint


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_closing_on_b_empty_with_replies_pending_loses_them():
    verdict = rejected(make_variant(close_on_eof=True))
    assert "said it was done" in verdict.message and "came back" in verdict.message
    assert "b'' means the client will send no more, not that it reads no more" in verdict.hint


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_finished_clients_left_in_rlist_spin():
    verdict = rejected(make_variant(finished_in_rlist=True))
    assert "it spins" in verdict.message
    assert "leave the sockets of finished out of rlist" in verdict.hint


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_finished_clients_never_closed_never_see_the_end_of_the_stream():
    verdict = rejected(make_variant(never_close_finished=True))
    assert "never ended" in verdict.message
    assert "close it and delete it from outbufs and from finished" in verdict.hint


@pytest.mark.timeout(30)
def test_unsolved_stub_says_not_done(capsys):
    assert check_select_round.report(stub) is False
    assert "NotImplementedError" in capsys.readouterr().out
    assert no_learner_threads_left()


@pytest.mark.timeout(30)
def test_a_crashing_loop_is_reported_not_raised(capsys):
    def crashes(listener, outbufs, finished, timeout):
        raise KeyError("oops")

    assert check_select_round.report(crashes) is False
    assert "KeyError" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_a_loop_without_timeout_still_ends():
    def no_timeout(listener, outbufs, finished, timeout):
        reference(listener, outbufs, finished, None)

    # It works as a server; the checker must still be able to stop it.
    check_select_round.verdict(no_timeout)
    assert no_learner_threads_left()


def test_the_old_three_argument_signature_gets_a_verdict():
    def old(listener, outbufs, timeout):
        select.select([listener, *outbufs], [], [], timeout)

    verdict = rejected(old)
    assert "TypeError" in verdict.message


def test_not_a_function(capsys):
    assert check_select_round.report("select_round") is False
    assert "expected a function" in capsys.readouterr().out


# ---------------------------------------------------------------- predictions
@pytest.mark.parametrize("question", sorted(QUESTIONS))
def test_predictions_right_and_wrong(capsys, question):
    right = QUESTIONS[question][0]
    wrong = "a" if right != "a" else "b"
    assert check_prediction.report(question, lambda: right) is True
    assert check_prediction.report(question, lambda: f"({wrong.upper()})") is False
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(PASS_PREFIX) and out[1].startswith(FAIL_PREFIX)
    assert "Hint:" in out[1]


def test_prediction_stub_and_nonsense(capsys):
    def unsolved():
        raise NotImplementedError

    assert check_prediction.report("idle_many_clients", unsolved) is False
    assert check_prediction.report("idle_many_clients", lambda: 42) is False
    assert check_prediction.report("no_such_question", lambda: "a") is False
    out = capsys.readouterr().out
    assert "NotImplementedError" in out and "42" in out and "no_such_question" in out
