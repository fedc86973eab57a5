"""The shared checker tools: verdicts, calling the learner's code safely, a temporary server."""

from __future__ import annotations

import threading

import pytest

from nbio_helpers import request, running_servers
from nbio_helpers.exercises import (
    FAIL_PREFIX,
    NOT_IMPLEMENTED_MESSAGE,
    PASS_PREFIX,
    NotYet,
    NotYetError,
    Verdict,
    call_learner,
    checker,
    not_yet,
    report,
    scrub,
    temporary_server,
    well_done,
)


def test_verdict_text_and_bool(capsys):
    passed = Verdict(True, "all bytes received")
    failed = Verdict(False, "only 3 of 5 bytes", hint="loop until you have n bytes")
    assert bool(passed) and not bool(failed)
    assert passed.text == "✅ Well done: all bytes received"
    assert failed.text == "❌ Not yet: only 3 of 5 bytes Hint: loop until you have n bytes"
    assert report(passed) is True
    assert report(failed) is False
    out = capsys.readouterr().out.splitlines()
    assert out == [passed.text, failed.text]


def test_well_done_and_not_yet_print_one_line_and_return_bool(capsys):
    assert well_done("yes") is True
    assert not_yet("no", "try again") is False
    assert not_yet("no hint") is False
    assert capsys.readouterr().out.splitlines() == [
        PASS_PREFIX + "yes",
        FAIL_PREFIX + "no Hint: try again",
        FAIL_PREFIX + "no hint",
    ]


def test_call_learner_returns_the_value():
    assert call_learner(lambda a, b=0: a + b, 2, b=3, timeout=2) == 5


def test_call_learner_stub_is_not_done_yet():
    def stub(sock, n):
        raise NotImplementedError

    with pytest.raises(NotYet) as info:
        call_learner(stub, None, 5, timeout=2)
    assert info.value.message == NOT_IMPLEMENTED_MESSAGE
    assert "raise NotImplementedError" in info.value.hint


def test_call_learner_reports_an_exception_by_name():
    def wrong():
        raise KeyError("oops")

    with pytest.raises(NotYet) as info:
        call_learner(wrong, timeout=2)
    assert "wrong() raised KeyError" in info.value.message
    assert info.value.hint


@pytest.mark.timeout(20)
def test_call_learner_gives_up_on_a_hung_function_and_stops_it():
    release = threading.Event()

    def hangs():
        while not release.is_set():  # "forever", as far as the checker is concerned
            pass

    try:
        with pytest.raises(NotYet) as info:
            call_learner(hangs, timeout=0.2)
        assert "hangs() did not return within 0.2 s" in info.value.message
        assert "it was still running line" in info.value.message
        assert "while not release.is_set()" in info.value.message
        assert "timeout" in info.value.hint
        # Stopped: no learner thread is left running.
        assert not [t for t in threading.enumerate() if t.name.startswith("learner-hangs")]
    finally:
        release.set()


def test_call_learner_refuses_a_non_function():
    with pytest.raises(NotYet, match="expected a function"):
        call_learner(b"HELLO")


def test_checker_decorator_turns_outcomes_into_verdicts(capsys):
    @checker
    def check_double(fn):
        value = call_learner(fn, 4, timeout=2)
        if value != 8:
            raise NotYet(f"double(4) returned {value!r}, expected 8", hint="multiply by 2")
        return "double(4) == 8"

    def stub(x):
        raise NotImplementedError

    assert check_double.report(lambda x: 2 * x) is True
    assert check_double.report(lambda x: x + 2 + 2 + 1) is False
    assert check_double.report(stub) is False
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "✅ Well done: double(4) == 8"
    assert out[1] == "❌ Not yet: double(4) returned 9, expected 8 Hint: multiply by 2"
    assert out[2].startswith("❌ Not yet: the exercise is not done yet (NotImplementedError)")


def test_checker_cell_prints_on_pass_and_raises_the_verdict_on_failure(capsys):
    @checker
    def check_double(fn):
        if call_learner(fn, 4, timeout=2) != 8:
            raise NotYet("double(4) is not 8", hint="multiply by 2")
        return "double(4) == 8"

    assert check_double(lambda x: 2 * x) is None  # the cell shows no True/False
    assert capsys.readouterr().out == "✅ Well done: double(4) == 8\n"
    with pytest.raises(AssertionError) as info:  # nbgrader: the cell fails
        check_double(lambda x: 9)
    assert isinstance(info.value, NotYetError)
    assert str(info.value) == "❌ Not yet: double(4) is not 8 Hint: multiply by 2"
    rendered = info.value._render_traceback_()  # IPython shows this, no traceback
    assert len(rendered) == 1 and "❌ Not yet: double(4) is not 8" in rendered[0]
    assert capsys.readouterr().out == ""
    verdict = check_double.verdict(lambda x: 9)
    assert not verdict.passed and verdict.hint == "multiply by 2"
    assert capsys.readouterr().out == ""


def test_checker_never_raises_even_for_its_own_bugs(capsys):
    @checker
    def check_buggy(fn):
        return {}["missing"]

    assert check_buggy.report(print) is False
    assert capsys.readouterr().out.startswith("❌ Not yet: something went wrong while checking")


def test_scrub_removes_ports_and_fds():
    text = "<socket fd=57, laddr=('127.0.0.1', 45678)> and 127.0.0.1:8080"
    assert scrub(text) == "<socket fd=N, laddr=HOST:PORT> and HOST:PORT"


def test_temporary_server_runs_and_is_stopped():
    with temporary_server("select") as server:
        assert server.name.startswith("check-select-")
        assert server.name in running_servers()
        assert request(server.address, b"abc", timeout=5) == b"ABC"
    assert server.name not in running_servers()
    assert not server.running


def test_temporary_server_does_not_replace_a_notebook_server(make_server):
    mine = make_server("select", name="demo")
    with temporary_server("select"):
        pass
    assert mine.running


def test_guarded_calls_under_a_tracer_do_not_hang():
    # CPython 3.11: PyThreadState_SetAsyncExc(id, NULL) (cancelling an asynchronous exception)
    # leaves the eval breaker set, and the next C call under a profiler or tracer (a
    # debugger, coverage, this checker's blocking-call hook) loops forever. The harness must
    # cancel only what it scheduled.
    import subprocess
    import sys

    code = """if True:
        import sys
        from nbio_helpers.exercises.harness import guarded
        def step(x):
            return len(str(x))
        call = guarded(step)
        call(1)                          # a learner call ends: nothing was scheduled
        sys.settrace(lambda *a: None)
        print(call(2) + len("ok"))
    """
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "3", done.stderr


def test_a_call_that_missed_its_leave_is_forgotten_once_its_thread_ended():
    # A stopped call can miss its _leave (the asynchronous exception may land between
    # _enter and the try that runs it); its thread ends, and a later thread may get the same
    # ident: it must not look like a learner call running for ages.
    import time as clock

    from nbio_helpers.exercises import harness

    leaker = threading.Thread(target=lambda: harness._enter("leaked"))
    leaker.start()
    leaker.join()
    assert harness.learner_calls_running() == {}
    me = threading.current_thread()
    with harness._lock:
        harness._running[me.ident] = harness._Call("ghost", clock.monotonic() - 100, 1, leaker)
    try:
        assert harness.running_for(me) == 0.0
        assert harness.learner_calls_running() == {}
    finally:
        with harness._lock:
            harness._running.pop(me.ident, None)
