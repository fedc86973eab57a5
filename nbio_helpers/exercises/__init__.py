"""Tools shared by the exercise checkers of every notebook.

A checker runs the learner's function against a real server, prints one friendly verdict
and returns a bool (True = passed). It never raises for the learner's mistakes, and a
learner's function that hangs cannot hang the kernel (it runs in a daemon thread with a
timeout). Per-notebook checkers live in ``nbio_helpers/exercises/nbNN.py``.

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

``@checker`` prints ``✅ Well done: <returned text>`` and returns True, or prints
``❌ Not yet: <message> Hint: <hint>`` and returns False. Without the decorator, build the
verdict yourself: ``return well_done("...")`` / ``return not_yet("...", hint="...")``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import re
import threading

PASS_PREFIX = "✅ Well done: "
FAIL_PREFIX = "❌ Not yet: "

NOT_IMPLEMENTED_MESSAGE = "the exercise is not done yet (NotImplementedError)"
NOT_IMPLEMENTED_HINT = "replace `raise NotImplementedError` with your code, run that cell, then this one."

DEFAULT_TIMEOUT = 5.0
"""Seconds a learner's function may run before the checker gives up on it."""


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``passed``, a ``message`` and, on failure, a ``hint``.

    ``bool(verdict)`` is ``verdict.passed``; :meth:`report` prints it and returns that bool.
    """

    passed: bool
    message: str
    hint: str = ""

    @property
    def text(self) -> str:
        """The one line printed for the learner."""
        if self.passed:
            return PASS_PREFIX + self.message
        return FAIL_PREFIX + self.message + (f" Hint: {self.hint}" if self.hint else "")

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


def checker(func):
    """Decorator for a ``check_*`` function: turns its outcome into one printed verdict.

    The decorated function returns the success message (a str), or raises :class:`NotYet`.
    Any other exception is also reported as a failure (never a traceback), so a bug that
    escapes the learner's code cannot crash the checker cell. Returns a bool.
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs) -> bool:
        try:
            message = func(*args, **kwargs)
        except NotYet as failure:
            return failure.verdict.report()
        except NotImplementedError:
            return not_yet(NOT_IMPLEMENTED_MESSAGE, NOT_IMPLEMENTED_HINT)
        except Exception as exc:  # the checker must not crash the learner's cell
            return not_yet(f"something went wrong while checking: {describe_exception(exc)}",
                           "run the cells above again from the top of this section.")
        return well_done(message or "all checks passed")
    return wrapper


# ---------------------------------------------------------------- calling the learner
_ADDRESS = re.compile(r"\(?'?(127\.0\.0\.1|::1|localhost)'?(?:[:,]\s*|\]:)(\d+)\)?")
_FD = re.compile(r"\bfd=\d+")


def scrub(text: str) -> str:
    """Remove what would make a printed verdict differ between runs (ports, fds)."""
    text = _ADDRESS.sub("HOST:PORT", text)
    return _FD.sub("fd=N", text)


def describe_exception(exc: BaseException) -> str:
    """``TypeName: message`` of an exception, without ports or fds."""
    text = str(exc)
    return scrub(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


_calls = itertools.count(1)


def call_learner(fn, *args, timeout: float = DEFAULT_TIMEOUT, **kwargs):
    """Call the learner's ``fn(*args, **kwargs)`` safely; return its result.

    It runs in a daemon thread (named ``learner-…``, not ``nbio-…``, so a hung learner thread
    does not fail ``finish()``) and is given ``timeout`` seconds. Raises :class:`NotYet` with
    a friendly message and hint when it raises ``NotImplementedError`` (the stub), raises
    anything else, or does not return in time; nothing else escapes.
    """
    if not callable(fn):
        raise NotYet(f"expected a function, got {type(fn).__name__}",
                     "pass the function itself, without calling it: check_x(my_function).")
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # report everything, even SystemExit, to the checker
            outcome["error"] = exc

    name = getattr(fn, "__name__", "function")
    thread = threading.Thread(target=target, name=f"learner-{name}-{next(_calls)}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise NotYet(f"{name}() did not return in time (the checker waited {timeout:g} seconds)",
                     "a blocking call is waiting forever: give every socket a timeout, "
                     "or stop looping once you have what you need.")
    error = outcome.get("error")
    if isinstance(error, NotImplementedError):
        raise NotYet(NOT_IMPLEMENTED_MESSAGE, NOT_IMPLEMENTED_HINT)
    if error is not None:
        raise NotYet(f"{name}() raised {describe_exception(error)}",
                     "read the error message, fix the function, run its cell again.")
    return outcome.get("value")


# ---------------------------------------------------------------- a server to check against
_servers = itertools.count(1)


@contextlib.contextmanager
def temporary_server(model: str = "select", **options):
    """Run a server of ``model`` for the duration of a ``with`` block (for checkers).

    It gets a fresh registry name (``check-<model>-N``) so it never replaces a server the
    notebook started, and it is stopped on exit; a stop that fails is not the learner's
    fault and is not raised.
    """
    from ..models import start_server  # local: keeps importing the checkers light

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
    "DEFAULT_TIMEOUT", "FAIL_PREFIX", "NOT_IMPLEMENTED_HINT", "NOT_IMPLEMENTED_MESSAGE", "NotYet",
    "PASS_PREFIX", "Verdict", "call_learner", "checker", "describe_exception", "not_yet", "report",
    "scrub", "temporary_server", "well_done",
]
