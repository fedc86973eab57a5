"""Tools shared by the exercise checkers of every notebook.

A checker runs the learner's code against real sockets and servers and gives one friendly
verdict. In a notebook, the checker cell is an nbgrader test cell::

    check_recv_exactly(recv_exactly)

* passed: it prints ``✅ Well done: …`` and returns None (the cell shows nothing else);
* not yet: it raises :class:`NotYetError`, an ``AssertionError`` (so nbgrader's autograde
  gives the cell 0 points) that IPython shows as the one red verdict line
  ``❌ Not yet: … Hint: …`` instead of a traceback (``_render_traceback_``).

The learner's code never runs in the kernel's main thread: it runs under the harness
(:mod:`nbio_helpers.exercises.harness`), which gives up on it after a time limit, stops it
when the check is over, says where it was stopped, and captures what it printed. After a
verdict no learner code is still running, or the verdict says plainly to restart the kernel.

Writing a checker::

    from nbio_helpers.exercises import NotYet, call_learner, checker, temporary_server

    @checker
    def check_recv_exactly(recv_exactly):
        with temporary_server("select") as server, connect(server.address) as sock:
            sock.sendall(b"hello")
            got = call_learner(recv_exactly, sock, 5, timeout=3)   # raises NotYet on failure
            if got != b"HELLO":
                raise NotYet(f"it returned {got!r}, expected b'HELLO'",
                             hint="keep calling recv() until you have n bytes")
        return "your function received all 5 bytes"

    check_recv_exactly.verdict(fn)     # the Verdict, printing and raising nothing (tests)
    check_recv_exactly.report(fn)      # prints the verdict, returns True/False, never raises

Learner code inside a loop of the checker's (a server's step, a subclass's ``serve``) is
wrapped with :func:`guarded` and run by a :class:`LearnerThread` (or a server's thread).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import os
import re
from collections.abc import Callable
from typing import Any, Protocol, cast

from nbio_helpers.exercises.harness import (
    RESTART_ADVICE,
    LearnerBaseException,
    LearnerStopped,
    LearnerThread,
    Outcome,
    OutputCapture,
    guarded,
    run_learner,
    running_for,
    stop_learner_code,
    unblock,
    where,
    zombies,
)

PASS_PREFIX = "✅ Well done: "
FAIL_PREFIX = "❌ Not yet: "

NOT_IMPLEMENTED_MESSAGE = "the exercise is not done yet (NotImplementedError)"
NOT_IMPLEMENTED_HINT = (
    "replace `raise NotImplementedError()` with your code, run that cell, then this one."
)

DEFAULT_TIMEOUT = 5.0
"""Seconds a learner's function may run before the checker gives up on it."""

HANG_HINT = (
    "a blocking call is waiting forever, or a loop never ends: give every socket a "
    "timeout, and stop looping once you have what you need."
)

_RED, _GREEN, _RESET = "\x1b[0;31m", "\x1b[0;32m", "\x1b[0m"


def grading() -> str:
    """``"autograde"`` or ``"validate"`` while nbgrader executes the notebook, else ``""``.

    nbgrader sets the environment variable ``NBGRADER_EXECUTION`` (to ``autograde`` in
    ``nbgrader autograde``, to ``validate`` in ``nbgrader validate``) around the kernel it
    starts: a cell can skip or shorten a long measurement then (``if not grading(): …``).
    """
    return os.environ.get("NBGRADER_EXECUTION", "")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``passed``, a ``message`` and, on failure, a ``hint``.

    ``notes`` are more lines for the learner: what their code printed, and the advice to
    restart the kernel if their code could not be stopped. ``bool(verdict)`` is ``passed``.
    """

    passed: bool
    message: str
    hint: str = ""
    notes: tuple = ()

    @property
    def line(self) -> str:
        """The verdict line itself."""
        if self.passed:
            return PASS_PREFIX + self.message
        return FAIL_PREFIX + self.message + (f" Hint: {self.hint}" if self.hint else "")

    @property
    def text(self) -> str:
        """Everything shown to the learner: the verdict line first, then the notes."""
        return "\n".join([self.line, *self.notes])

    def report(self) -> bool:
        """Print the verdict; return True if passed."""
        print(self.text)
        return self.passed

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.text


def report(verdict: Verdict) -> bool:
    """Print ``verdict`` and return True if it passed (same as ``verdict.report()``)."""
    return verdict.report()


def well_done(message: str) -> bool:
    """Print ``✅ Well done: message`` and return True."""
    return Verdict(True, message).report()


def not_yet(message: str, hint: str = "") -> bool:
    """Print ``❌ Not yet: message Hint: hint`` and return False."""
    return Verdict(False, message, hint).report()


class NotYet(Exception):
    """Raise inside a checker (or get from :func:`call_learner`) to fail with a hint."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    @property
    def verdict(self) -> Verdict:
        return Verdict(False, self.message, self.hint)


class NotYetError(AssertionError):
    """What a checker cell raises when the check failed: nbgrader scores the cell 0.

    ``verdict`` is the :class:`Verdict`; ``str()`` is its text. In IPython the error shows
    as the verdict alone, in red, without a traceback.
    """

    def __init__(self, verdict: Verdict):
        super().__init__(verdict.text)
        self.verdict = verdict

    def _render_traceback_(self) -> list[str]:
        lines = self.verdict.text.split("\n")
        return [_RED + lines[0] + _RESET, *lines[1:]]


class CheckInterrupted(KeyboardInterrupt):
    """The Stop button (a KeyboardInterrupt) was pressed during a check; the learner's code
    was stopped before this was raised. Shown as one line in IPython."""

    def _render_traceback_(self) -> list[str]:
        return [_RED + str(self) + _RESET]


def _run_check(func, args, kwargs) -> Verdict:
    earlier = zombies()
    printed = OutputCapture()
    interrupted = False
    with printed:
        try:
            try:
                message = func(*args, **kwargs)
                verdict = Verdict(True, message or "all checks passed")
            except NotYet as failure:
                verdict = failure.verdict
            except NotImplementedError:
                verdict = Verdict(False, NOT_IMPLEMENTED_MESSAGE, NOT_IMPLEMENTED_HINT)
            except LearnerBaseException as exc:
                verdict = _base_exception_verdict("your code", exc.original)
            except (KeyboardInterrupt, LearnerStopped):
                interrupted = True
                verdict = Verdict(False, "the check was interrupted")
            except Exception as exc:  # the checker must not crash the learner's cell
                verdict = Verdict(
                    False,
                    f"something went wrong while checking: {describe_exception(exc)}",
                    "run the cells above again from the top of this section.",
                )
        finally:
            # Whatever learner code still runs (a server's loop, a stuck call) ends now.
            survivors = stop_learner_code()
    notes = []
    summary = printed.summary("your code")
    if summary:
        notes.append(summary)
    stuck = {**survivors, **{i: w for i, w in zombies().items() if i not in earlier}}
    if stuck:
        place = next((w for w in stuck.values() if w), "")
        notes.append(
            "⚠ "
            + RESTART_ADVICE[:1].upper()
            + RESTART_ADVICE[1:]
            + (f" (it is at {place})" if place else "")
        )
        if verdict.passed:
            verdict = Verdict(False, "your code was still running after the check", HANG_HINT)
    elif earlier:
        notes.append(
            "⚠ code from an earlier check is still running: restart the kernel "
            "(Kernel → Restart) and run the notebook from the top."
        )
    if interrupted:
        raise CheckInterrupted(
            "⏹ The check was stopped (interrupted); "
            + (
                "your code could not be stopped: " + RESTART_ADVICE
                if stuck
                else "your code was stopped too."
            )
        )
    return dataclasses.replace(verdict, notes=tuple(notes))


class CheckFunction(Protocol):
    """What :func:`checker` makes of a check: the cell's function, and its other faces."""

    verdict: Callable[..., Verdict]
    report: Callable[..., bool]
    check: Callable[..., Any]

    def __call__(self, *args: Any, **kwargs: Any) -> None: ...


def checker(func: Callable[..., Any]) -> CheckFunction:
    """Decorator for a ``check_*`` function: turns its outcome into one verdict.

    The decorated function returns the success message (a str), or raises :class:`NotYet`.
    Any other exception is also reported as a failure, so a bug that escapes the learner's
    code cannot crash the checker cell with a traceback. Around the whole check, everything
    printed (by any thread) is captured, and afterwards every learner call still running is
    stopped (:func:`~nbio_helpers.exercises.harness.stop_learner_code`).

    The result, ``check_x``:

    * ``check_x(...)``: prints the verdict and returns None if passed, raises
      :class:`NotYetError` (an AssertionError showing the verdict) if not: the notebook cell;
    * ``check_x.verdict(...)``: returns the :class:`Verdict`, prints and raises nothing;
    * ``check_x.report(...)``: prints the verdict, returns True/False, never raises.

    The Stop button during a check stops the learner's code and raises
    :class:`CheckInterrupted` (a KeyboardInterrupt), so that Run All stops as usual.
    """

    @functools.wraps(func)
    def verdict(*args, **kwargs) -> Verdict:
        return _run_check(func, args, kwargs)

    @functools.wraps(func)
    def cell(*args, **kwargs) -> None:
        result = _run_check(func, args, kwargs)
        if not result.passed:
            raise NotYetError(result)
        print(result.text)

    def printed(*args, **kwargs) -> bool:
        return _run_check(func, args, kwargs).report()

    check = cast(CheckFunction, cell)  # a function with three attributes, set here
    check.verdict = verdict
    check.report = printed
    check.check = func
    return check


# ---------------------------------------------------------------- calling the learner
_ADDRESS = re.compile(r"\(?'?(127\.0\.0\.1|::1|localhost)'?(?:[:,]\s*|\]:)(\d+)\)?")
_FD = re.compile(r"\bfd=\d+")


def scrub(text: str) -> str:
    """Remove what would make a printed verdict differ between runs (ports, fds)."""
    text = _ADDRESS.sub("HOST:PORT", text)
    return _FD.sub("fd=N", text)


def describe_exception(exc: BaseException) -> str:
    """``TypeName: message`` of an exception, without ports or fds."""
    if isinstance(exc, LearnerBaseException):
        exc = exc.original
    text = str(exc)
    return scrub(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def _base_exception_verdict(name: str, exc: BaseException) -> Verdict:
    return NotYet(*base_exception_failure(name, exc)).verdict


def base_exception_failure(name: str, exc: BaseException) -> tuple[str, str]:
    """(message, hint) for a KeyboardInterrupt, SystemExit, ... raised by learner code."""
    what = describe_exception(exc)
    if isinstance(exc, SystemExit):
        hint = (
            "sys.exit() (or exit()) raises SystemExit: in a notebook it would stop the "
            "whole cell, in a server the whole loop. Return, or raise an ordinary "
            "exception such as ConnectionError, instead."
        )
    elif isinstance(exc, KeyboardInterrupt):
        hint = (
            "KeyboardInterrupt is what the Stop button raises; raised by your own code it "
            "stops everything around it. Return, or raise an ordinary exception, instead."
        )
    else:
        hint = (
            "this exception is not an Exception: nothing but the kernel expects it. Raise "
            "an ordinary exception instead."
        )
    return f"{name} raised {what}", hint


def judge(
    outcome: Outcome,
    name: str,
    *,
    limit: float,
    hang_hint: str | None = None,
    allow_close: bool = False,
) -> Outcome:
    """Raise :class:`NotYet` for what no check accepts: the stub, a ``BaseException``, a
    call that did not return within ``limit``, a socket given to it that it closed.
    Returns ``outcome`` otherwise (a value, or an ``Exception`` for the checker to judge)."""
    if isinstance(outcome.error, NotImplementedError):
        raise NotYet(NOT_IMPLEMENTED_MESSAGE, NOT_IMPLEMENTED_HINT)
    if outcome.closed and not allow_close:
        raise NotYet(
            f"{name} closed the socket it was given ({', '.join(outcome.closed)})",
            "the socket belongs to the caller, who still needs it: never close a "
            "socket you were given; return (or raise) and let the caller close it.",
        )
    if outcome.base_error is not None:
        raise NotYet(*base_exception_failure(name, outcome.base_error))
    if outcome.timed_out:
        message = (
            f"{name} {outcome.gave_up}"
            if outcome.gave_up
            else f"{name} did not return within {limit:g} s"
        )
        if outcome.where:
            message += f": it was still running {outcome.where}"
        raise NotYet(message, hang_hint or HANG_HINT)
    return outcome


def judge_error(error: BaseException, name: str, *, prefix: str = "") -> None:
    """Raise :class:`NotYet` for what no check accepts in an exception that ended learner
    code (a loop of the checker's that died, say): the stub (``NotImplementedError``), and a
    ``BaseException`` that is not an ``Exception``, bare or wrapped in
    :class:`LearnerBaseException` (``f"{prefix}{name} raised KeyboardInterrupt"``, with a hint
    saying why not). Returns for any other exception, for the checker to judge."""
    if isinstance(error, NotImplementedError):
        raise NotYet(NOT_IMPLEMENTED_MESSAGE, NOT_IMPLEMENTED_HINT)
    if isinstance(error, LearnerBaseException):
        error = error.original
    if not isinstance(error, Exception):
        message, hint = base_exception_failure(name, error)
        raise NotYet(prefix + message, hint)


def try_learner(
    fn,
    *args,
    limit: float = DEFAULT_TIMEOUT,
    hang_hint: str | None = None,
    name: str | None = None,
    sockets=(),
    allow_close: bool = False,
    give_up=None,
    **kwargs,
) -> Outcome:
    """Call the learner's ``fn(*args, **kwargs)`` under the harness; return its
    :class:`~nbio_helpers.exercises.harness.Outcome` when it returned a value or raised an
    ``Exception`` (``outcome.value`` / ``outcome.error``: for the checker to judge, since
    ``TimeoutError`` may be the right answer).

    Raises :class:`NotYet` (see :func:`judge`) when ``fn`` is not callable, is the unsolved
    stub, raised a ``BaseException`` that is not an ``Exception``, did not return within
    ``limit`` seconds (with ``hang_hint``, and where it was stopped), or closed a socket
    passed to it (unless ``allow_close``). ``give_up``: see
    :func:`~nbio_helpers.exercises.harness.run_learner`.
    """
    label = f"{name or getattr(fn, '__name__', 'your function')}()"
    if not callable(fn):
        raise NotYet(
            f"expected a function, got {type(fn).__name__}",
            "pass the function itself, without calling it: check_x(my_function).",
        )
    outcome = run_learner(
        fn, *args, limit=limit, name=name, sockets=sockets, give_up=give_up, **kwargs
    )
    return judge(outcome, label, limit=limit, hang_hint=hang_hint, allow_close=allow_close)


def call_learner(fn, *args, timeout: float = DEFAULT_TIMEOUT, **kwargs):
    """Call the learner's ``fn(*args, **kwargs)`` under the harness; return its result.

    Like :func:`try_learner`, with ``timeout`` for its ``limit`` (its other keywords,
    ``hang_hint``, ``name``, ``sockets``, ``allow_close`` and ``give_up``, are its own too), and
    an ``Exception`` raised by ``fn`` is a failure as well (``NotYet("fn() raised KeyError:
    ...")``). Nothing else escapes.
    """
    outcome = try_learner(fn, *args, limit=timeout, **kwargs)
    if outcome.error is not None:
        label = kwargs.get("name") or getattr(fn, "__name__", "function")
        raise NotYet(
            f"{label}() raised {describe_exception(outcome.error)}",
            "read the error message, fix the function, run its cell again.",
        )
    return outcome.value


def answer_of(answer, *, timeout: float = 2.0, name: str = "your answer"):
    """The learner's answer to a question: ``answer()`` if it is a function (called under
    the harness), else ``answer`` itself. A stub that raises NotImplementedError gives the
    'not done yet' verdict."""
    if callable(answer):
        return call_learner(answer, timeout=timeout)
    return answer


@contextlib.contextmanager
def requires_exercise(number: int, name: str = ""):
    """For a demo cell that calls the learner's function: if it is still the stub, say
    "solve exercise N first" instead of showing a NotImplementedError traceback::

        with requires_exercise(1, "recv_exactly_timeout"):
            print(recv_exactly_timeout(sock, 20, timeout=2))
    """
    try:
        yield
    except NotImplementedError:
        what = f" (`{name}` above)" if name else ""
        print(f"⏭ Solve exercise {number}{what} first, then run this cell again.")


# ---------------------------------------------------------------- a server to check against
_servers = itertools.count(1)


@contextlib.contextmanager
def temporary_server(model: str = "select", **options):
    """Run a server of ``model`` for the duration of a ``with`` block (for checkers).

    It gets a fresh registry name (``check-<model>-N``) so it never replaces a server the
    notebook started, and it is stopped on exit; a stop that fails is not the learner's
    fault and is not raised.
    """
    from nbio_helpers.models import start_server  # local: keeps importing the checkers light

    options.setdefault("name", f"check-{model}-{next(_servers)}")
    server = start_server(model, **options)
    try:
        yield server
    finally:
        try:
            server.stop(timeout=3.0)
        except Exception:
            pass


__all__ = [
    "DEFAULT_TIMEOUT",
    "FAIL_PREFIX",
    "HANG_HINT",
    "NOT_IMPLEMENTED_HINT",
    "NOT_IMPLEMENTED_MESSAGE",
    "PASS_PREFIX",
    "RESTART_ADVICE",
    "CheckFunction",
    "CheckInterrupted",
    "LearnerBaseException",
    "LearnerStopped",
    "LearnerThread",
    "NotYet",
    "NotYetError",
    "Outcome",
    "OutputCapture",
    "Verdict",
    "answer_of",
    "base_exception_failure",
    "call_learner",
    "checker",
    "describe_exception",
    "grading",
    "guarded",
    "judge",
    "judge_error",
    "not_yet",
    "report",
    "requires_exercise",
    "run_learner",
    "running_for",
    "scrub",
    "stop_learner_code",
    "temporary_server",
    "try_learner",
    "unblock",
    "well_done",
    "where",
    "zombies",
]
