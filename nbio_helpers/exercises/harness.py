"""Running a learner's code under a bound: stopped when it runs away, its output captured.

A checker never runs learner code directly. It runs it through this module, which

* runs it in a daemon thread (named ``learner-…``), and gives up on it after a time limit;
* stops it when the check is over, or when it ran out of time: first by unblocking the
  sockets the checker owns (``shutdown()``: a ``recv()`` or ``select()`` on them returns),
  then with an asynchronous exception, :class:`LearnerStopped`, raised in that thread
  between two bytecodes (``PyThreadState_SetAsyncExc``; it works on every OS);
* says where it was stopped ("line 7 of your cell: ``while True:``"), from the frame of
  the stopped thread;
* knows when it could not stop it (a C call that never returns, ``time.sleep(1e6)``, a
  loop that swallows every exception): such a thread is a *zombie*, and the verdict tells
  the learner plainly to restart the kernel;
* captures what it printed, from every thread, during the whole check, so that nothing
  reaches later cells and the verdict is never lost in a flood.

Why a thread and not the kernel's main thread: the server-loop checkers run learner code
inside a server's loop, which is a background thread by design; one mechanism serves them
all, on Linux, macOS and Windows (no ``pthread_kill`` needed). The kernel's main thread stays
the checker's, so the Stop button (SIGINT, a ``KeyboardInterrupt`` in the main thread) always
reaches the checker, which then stops the learner's code before it re-raises.

The pieces (re-exported by :mod:`nbio_helpers.exercises`):

* :func:`run_learner` / :func:`call_learner` — call a pure function under a time limit;
* :func:`guarded` — wrap learner code that runs inside a loop of the checker's (a server's
  step, a subclass's ``serve``), so that it can be found, timed and stopped;
* :class:`LearnerThread` — a daemon thread running a loop of the checker's that calls
  learner code (with its CPU time, and how long the current learner call has been running);
* :func:`stop_learner_code` — stop every learner call still running (the checker decorator
  does it after every check);
* :class:`OutputCapture` — the bounded, attributed capture of everything printed.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import itertools
import linecache
import os
import re
import socket
import sys
import threading
import time
from typing import Any

STOP_TIMEOUT = 1.5
"""Seconds spent trying to stop learner code before calling it a zombie."""

RESTART_ADVICE = (
    "your function is still running; restart the kernel (Kernel → Restart) "
    "and run the notebook from the top."
)

SHOWN_LINES = 5
"""How many of the lines the learner's code printed a verdict shows."""

LINE_WIDTH = 160
"""Characters kept of each line shown."""


class LearnerStopped(BaseException):
    """Raised (asynchronously) in a thread running learner code, to stop it.

    A ``BaseException``, so that ``except Exception`` in the learner's code does not catch it.
    """


class LearnerBaseException(Exception):
    """A ``KeyboardInterrupt``, ``SystemExit`` or other ``BaseException`` that the learner's
    code raised inside a loop of the checker's, wrapped so that the loop treats it as an
    ordinary error; ``original`` is what was raised."""

    def __init__(self, original: BaseException):
        super().__init__(
            f"{type(original).__name__}: {original}" if str(original) else type(original).__name__
        )
        self.original = original


# ------------------------------------------------------------------ learner calls running now
@dataclasses.dataclass
class _Call:
    """One thread's learner call in progress."""

    name: str
    started: float
    depth: int = 1
    thread: threading.Thread | None = None  # the thread (an ident is reused once it ends)


_lock = threading.Lock()
_running: dict[int, _Call] = {}  # thread ident -> the learner call it is running
_zombies: dict[int, str] = {}  # thread ident -> where it was when we gave up

# PyThreadState_SetAsyncExc(id, exc) with our own prototypes: setting argtypes on the shared
# ctypes.pythonapi.PyThreadState_SetAsyncExc would change it for every other user in the
# process, at import.
_set_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)
# The same C function, declared to take NULL: PyThreadState_SetAsyncExc(id, NULL) cancels.
_cancel_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)


_signalled: set[int] = set()  # threads sent an asynchronous exception, maybe pending


def _raise_in(ident: int, exc_type) -> bool:
    """Schedule ``exc_type`` in thread ``ident`` (None: cancel a pending one)."""
    if exc_type is None:
        _signalled.discard(ident)
        return _cancel_async_exc(ident, None) == 1
    _signalled.add(ident)
    return _set_async_exc(ident, exc_type) == 1


def _clear_pending() -> None:
    """Cancel an asynchronous exception aimed at the current thread and not yet raised.

    Only if one was sent: on CPython 3.11, cancelling (``PyThreadState_SetAsyncExc(id,
    NULL)``) leaves the thread's eval breaker set, and its next C call under a tracer or
    profiler (a debugger, coverage) then loops forever."""
    ident = threading.get_ident()
    if ident in _signalled:
        _signalled.discard(ident)
        _cancel_async_exc(ident, None)


def _purge() -> None:
    """Forget the calls of threads that have ended (call with ``_lock`` held). A stopped call
    can miss its ``_leave`` (the asynchronous exception may land between ``_enter`` and the
    ``try`` that would run it), and a new thread may get the ended one's ident."""
    for ident in [
        i for i, call in _running.items() if call.thread is not None and not call.thread.is_alive()
    ]:
        del _running[ident]


def _enter(name: str) -> None:
    ident = threading.get_ident()
    me = threading.current_thread()
    with _lock:
        call = _running.get(ident)
        if call is None or call.thread is not me:  # none, or an ended thread's
            _running[ident] = _Call(name, time.monotonic(), 1, me)
        else:
            call.depth += 1


def _leave(final: bool = False) -> None:
    """End the current thread's learner call (``final``: the outermost one, whatever the
    depth says: a stopped inner call may have missed its own ``_leave``)."""
    # Leaving must not be cut short by a LearnerStopped aimed at the call just ending.
    while True:
        try:
            ident = threading.get_ident()
            with _lock:
                call = _running.get(ident)
                if call is not None:
                    call.depth = 0 if final else call.depth - 1
                    if call.depth <= 0:
                        del _running[ident]
                        _clear_pending()
            return
        except LearnerStopped:
            continue


def guarded(fn, *, name: str | None = None, wrap_base: bool = True):
    """``fn`` wrapped so that, while it runs, the harness can find, time and stop it.

    Use it for learner code that a loop of the checker's calls, in whatever thread::

        self.learner_step = guarded(learner_step)       # then call it as before

    Parameters
    ----------
    fn:
        The learner's function (or bound method).
    name:
        How verdicts name it (default ``fn.__name__``).
    wrap_base:
        If true, a ``KeyboardInterrupt``, ``SystemExit`` (any ``BaseException`` but
        :class:`LearnerStopped`) raised by ``fn`` comes out as :class:`LearnerBaseException`,
        an ``Exception``: the checker's loop then handles it like any error, and it can never
        end the cell with a raw traceback.
    """
    label = name or str(getattr(fn, "__name__", "function"))

    def call(*args, **kwargs):
        _enter(label)
        try:
            return fn(*args, **kwargs)
        except LearnerStopped:
            raise
        except Exception:
            raise
        except BaseException as exc:
            if wrap_base:
                raise LearnerBaseException(exc) from None
            raise
        finally:
            _leave()

    functools.update_wrapper(call, fn, assigned=(), updated=())  # only call.__wrapped__ = fn
    call.__name__ = label
    return call


def running_for(thread: threading.Thread | int | None) -> float:
    """Seconds the learner call now running in ``thread`` has been running (0 if none)."""
    ident = thread.ident if isinstance(thread, threading.Thread) else thread
    with _lock:
        _purge()
        call = _running.get(ident) if ident is not None else None
    if call is None or (
        isinstance(thread, threading.Thread)
        and call.thread is not None
        and call.thread is not thread
    ):
        return 0.0
    return time.monotonic() - call.started


def learner_calls_running() -> dict[int, str]:
    """``{thread ident: function name}`` of the learner calls running now, zombies included."""
    with _lock:
        _purge()
        return {ident: call.name for ident, call in _running.items()}


def zombies() -> dict[int, str]:
    """``{thread ident: where}`` of learner code that could not be stopped and still runs."""
    alive = {t.ident for t in threading.enumerate()}
    with _lock:
        _purge()
        for ident in [i for i in _zombies if i not in alive or i not in _running]:
            del _zombies[ident]
        return dict(_zombies)


# ------------------------------------------------------------------------- where it was
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIBRARY_DIRS = tuple({os.path.dirname(os.__file__), os.path.dirname(threading.__file__)})
_CELL_FILE = re.compile(r"ipykernel_\d+|<ipython-input-|<cell")


def _is_learner_file(filename: str) -> bool:
    if not filename or filename.startswith(("<frozen", "<string>")):  # <string>: generated
        return False  # (dataclass methods)
    path = os.path.abspath(filename) if not filename.startswith("<") else filename
    if path.startswith(_PACKAGE_DIR + os.sep) or "site-packages" in path:
        return False
    return not any(path.startswith(d + os.sep) for d in _LIBRARY_DIRS)


def describe_line(filename: str, lineno: int) -> str:
    """``line 7 of your cell: `while True:``` (or ``of <file>``) for a learner's line."""
    text = linecache.getline(filename, lineno).strip()
    if _CELL_FILE.search(filename):
        place = f"line {lineno} of your cell"
    else:
        place = f"line {lineno} of {os.path.basename(filename)}"
    return f"{place}: `{text[:80]}`" if text else place


def where(thread: threading.Thread | int | None) -> str | None:
    """Where the learner's code running in ``thread`` is now, or None if not found.

    The innermost frame of the learner's own code (not this package, not the standard
    library, not an installed package) in the thread's stack.
    """
    ident = thread.ident if isinstance(thread, threading.Thread) else thread
    frame = sys._current_frames().get(ident) if ident is not None else None
    while frame is not None:
        code = frame.f_code
        if _is_learner_file(code.co_filename):
            return describe_line(code.co_filename, frame.f_lineno)
        frame = frame.f_back
    return None


# ------------------------------------------------------------------------------- stopping
def unblock(sockets) -> None:
    """Free any thread blocked on these sockets: ``shutdown()`` each one; for a listening
    socket, also connect to it (a ``select()`` or ``accept()`` on it then returns)."""
    for sock in list(sockets):
        try:
            if sock.fileno() == -1:
                continue
            listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        except (OSError, ValueError):
            listening = 0
        if listening:
            with contextlib.suppress(OSError, ValueError):
                socket.create_connection(sock.getsockname()[:2], timeout=0.2).close()
        with contextlib.suppress(OSError, ValueError):
            sock.shutdown(socket.SHUT_RDWR)


def stop_learner_code(idents=None, *, sockets=(), timeout: float | None = None) -> dict[int, str]:
    """Stop the learner calls running in threads ``idents`` (default: all of them).

    First unblocks ``sockets``, then raises :class:`LearnerStopped` in each thread still
    running learner code, again and again, until the call has ended or ``timeout`` seconds
    (default: :data:`STOP_TIMEOUT`, read at each call) have passed. Zombies already known are
    not tried again. Returns ``{ident: where}`` of the calls that could not be stopped (they
    become zombies).
    """
    known = zombies()
    with _lock:
        _purge()
        targets = [
            i for i in (_running if idents is None else idents) if i in _running and i not in known
        ]
    if not targets:
        return {}
    places = {ident: where(ident) or "" for ident in targets}
    unblock(sockets)
    deadline = time.monotonic() + (STOP_TIMEOUT if timeout is None else timeout)
    pause = 0.002
    while True:
        with _lock:
            left = [i for i in targets if i in _running]
            for ident in left:
                _raise_in(ident, LearnerStopped)
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(pause)
        pause = min(0.02, pause * 2)
    survivors = {}
    with _lock:
        for ident in targets:
            if ident in _running:
                _raise_in(ident, None)  # do not leave it pending: it would fire later
                survivors[ident] = places.get(ident) or ""
        _zombies.update(survivors)
    if survivors:
        OutputCapture.silence_zombies()
    return survivors


# ------------------------------------------------------------------------ learner threads
_names = itertools.count(1)


class LearnerThread:
    """A daemon thread running ``target()``, a loop of the checker's that calls learner code.

    The learner code inside it must be wrapped with :func:`guarded` (the harness then knows
    how long the current call has been running, and can stop it). ``cpu`` is a
    :class:`~nbio_helpers.cpu.ThreadCPU` of the thread, ``error`` what ended ``target``
    (if anything did).

    Parameters
    ----------
    target:
        The loop, called once in the thread.
    name:
        The thread's name, prefixed with ``learner-`` (so that ``finish()`` never mistakes it
        for a server of the package).
    sockets:
        Sockets the checker owns that the learner code may block on: :meth:`stop` shuts
        them down to unblock it.
    """

    def __init__(self, target, *, name: str = "loop", sockets=()):
        from nbio_helpers.cpu import ThreadCPU  # local: keeps importing the harness light

        self.target = target
        self.sockets = list(sockets)
        self.error: BaseException | None = None
        self.cpu = ThreadCPU()
        self._thread = threading.Thread(
            target=self._run, daemon=True, name=f"learner-{name}-{next(_names)}"
        )

    def start(self) -> LearnerThread:
        self._thread.start()
        return self

    def _run(self) -> None:
        self.cpu.enter()
        try:
            self.target()
        except LearnerStopped:
            pass
        except BaseException as exc:  # reported by the checker; the thread just ends
            self.error = exc.original if isinstance(exc, LearnerBaseException) else exc
        finally:
            _leave(final=True)  # a stopped inner call may have missed its own
            self.cpu.exit()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def running_for(self) -> float:
        """Seconds the learner call now running in this thread has been running (0: none)."""
        return running_for(self._thread)

    def where(self) -> str | None:
        """Where the learner's code in this thread is now (see :func:`where`)."""
        return where(self._thread)

    def stop(self, join: float = 1.0) -> dict[int, str]:
        """Give ``target`` ``join`` seconds to end by itself, then stop the learner code in
        it; returns :func:`stop_learner_code`'s survivors (``{}``: the thread has ended)."""
        self._thread.join(join)
        survivors = {}
        if self._thread.is_alive():
            survivors = stop_learner_code([self._thread.ident], sockets=self.sockets)
            self._thread.join(0.5)
        return survivors


# ------------------------------------------------------------------------ calling functions
@dataclasses.dataclass
class Outcome:
    """What a learner's function did when :func:`run_learner` called it.

    ``value`` (returned) or ``error`` (an ``Exception`` it raised), ``elapsed`` seconds;
    ``base_error`` is a ``BaseException`` it raised that is not an ``Exception``
    (``KeyboardInterrupt``, ``SystemExit``); ``timed_out`` if it had not returned within the
    limit, and then ``where`` it was and whether it is ``still_running`` (a zombie);
    ``closed`` lists the sockets given to it that it closed (as "argument 1", ...);
    ``gave_up`` is the reason ``give_up()`` gave for stopping it early.
    """

    value: Any = None  # whatever the learner's code returned
    error: BaseException | None = None
    elapsed: float = 0.0
    base_error: BaseException | None = None
    timed_out: bool = False
    where: str | None = None
    still_running: bool = False
    closed: list = dataclasses.field(default_factory=list)
    gave_up: str = ""


def _open_sockets(values) -> dict[int, socket.socket]:
    found = {}
    for position, value in enumerate(values, 1):
        if isinstance(value, socket.socket) and value.fileno() != -1:
            found[position] = value
    return found


def run_learner(
    fn, *args, limit: float, name: str | None = None, sockets=(), give_up=None, **kwargs
) -> Outcome:
    """Call the learner's ``fn(*args, **kwargs)`` in a ``learner-…`` thread; wait at most
    ``limit`` seconds; return its :class:`Outcome`. Never raises for anything ``fn`` does.

    A call still running after ``limit`` is stopped at once (sockets among ``args`` and in
    ``sockets`` are shut down first, to unblock it). Whatever ``fn`` prints goes to the
    check's :class:`OutputCapture` (installed by the checker decorator). ``give_up``, if
    given, is asked every 0.1 s; a non-empty string it returns (why: "sent nothing for 2 s")
    stops the call at once, as if ``limit`` had passed (``outcome.gave_up`` is that string).
    """
    label = name or str(getattr(fn, "__name__", "function"))
    given = _open_sockets(args)
    result: dict = {}
    started = threading.Event()

    def target():
        _enter(label)
        try:
            started.set()
            begin = time.monotonic()
            try:
                result["value"] = fn(*args, **kwargs)
            except LearnerStopped:
                result["stopped"] = True
            except Exception as exc:
                result["error"] = exc
            except BaseException as exc:  # KeyboardInterrupt, SystemExit, ...
                result["base"] = exc
            result["elapsed"] = time.monotonic() - begin
        except LearnerStopped:  # landed in our own lines above
            result["stopped"] = True
        finally:
            _leave(final=True)

    thread = threading.Thread(target=target, daemon=True, name=f"learner-{label}-{next(_names)}")
    began = time.monotonic()
    thread.start()
    reason = ""
    try:
        deadline = began + limit
        while thread.is_alive() and time.monotonic() < deadline:
            thread.join(min(0.1, max(0.0, deadline - time.monotonic())))
            if give_up is not None and thread.is_alive():
                reason = give_up() or ""
                if reason:
                    break
    except BaseException:  # the Stop button: stop the learner's call, then go on up
        stop_learner_code([thread.ident], sockets=[*given.values(), *sockets])
        raise
    outcome = Outcome()
    if thread.is_alive() or result.get("stopped"):
        outcome.timed_out = True
        outcome.gave_up = reason
        outcome.elapsed = time.monotonic() - began
        outcome.where = where(thread)
        survivors = stop_learner_code([thread.ident], sockets=[*given.values(), *sockets])
        thread.join(0.2)
        if survivors:
            outcome.still_running = True
            outcome.where = outcome.where or survivors.get(thread.ident or 0) or None
    else:
        outcome.value = result.get("value")
        outcome.error = result.get("error")
        outcome.base_error = result.get("base")
        outcome.elapsed = result.get("elapsed", time.monotonic() - began)
    outcome.closed = [
        f"argument {position}" for position, sock in given.items() if sock.fileno() == -1
    ]
    return outcome


# ------------------------------------------------------------------------------- output
class _Tee:
    """Stands in for ``sys.stdout`` / ``sys.stderr``: routes each write by thread."""

    def __init__(self, original, stream_name: str):
        self._original = original
        self._stream_name = stream_name

    def write(self, text) -> int:
        if not isinstance(text, str):
            text = str(text)
        capture = OutputCapture.active
        if capture is not None:
            capture.add(text)
        elif threading.get_ident() in _zombies:
            OutputCapture.dropped += text.count("\n")
        else:
            return self._original.write(text)
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self._original.flush()

    def __getattr__(self, attr):  # encoding, isatty, set_parent (ipykernel), ...
        return getattr(self._original, attr)


class OutputCapture:
    """Everything printed (``sys.stdout`` and ``sys.stderr``, from every thread) while it is
    active, counted, with the first :data:`SHOWN_LINES` lines kept. Bounded: a flood of
    gigabytes costs counting, not memory.

    Usage (the checker decorator does this around every check)::

        with OutputCapture() as printed:
            ...                              # run the learner's code
        printed.lines, printed.first         # 1204331, ['tick', 'tick', ...]
        printed.summary()                    # "your code printed 1,204,331 lines; ..."
    """

    active: OutputCapture | None = None
    dropped = 0  # lines printed by zombies after their check, thrown away
    _installed: tuple | None = None

    def __init__(self):
        self.lines = 0
        self.chars = 0
        self.first: list[str] = []
        self._partial = ""
        self._lock = threading.Lock()
        self._outer: OutputCapture | None = None

    def add(self, text: str) -> None:
        with self._lock:
            self.chars += len(text)
            newlines = text.count("\n")
            self.lines += newlines
            if len(self.first) < SHOWN_LINES:
                pieces = (self._partial + text).split("\n")
                self._partial = pieces.pop()[:LINE_WIDTH]
                for piece in pieces:
                    if len(self.first) < SHOWN_LINES:
                        self.first.append(piece[:LINE_WIDTH])
            elif newlines == 0 and not self._partial:
                self._partial = "?"  # only counts: a last line without its newline

    @property
    def total_lines(self) -> int:
        """Lines printed, a last line without a newline included."""
        return self.lines + (1 if self._partial else 0)

    def summary(self, who: str = "your code") -> str:
        """One paragraph for the verdict ('' if nothing was printed)."""
        total = self.total_lines
        if not total:
            return ""
        shown = list(self.first)
        if self._partial and self._partial != "?" and len(shown) < SHOWN_LINES:
            shown.append(self._partial)
        what = "1 line" if total == 1 else f"{total:,} lines"
        head = f"{who} printed {what}"
        if total > len(shown):
            head += f"; the first {len(shown)} were:" if len(shown) > 1 else "; the first was:"
        else:
            head += ":"
        return head + "".join(f"\n    {line}" for line in shown)

    @classmethod
    def _install(cls) -> None:
        if not isinstance(sys.stdout, _Tee):
            sys.stdout = _Tee(sys.stdout, "stdout")
        if not isinstance(sys.stderr, _Tee):
            sys.stderr = _Tee(sys.stderr, "stderr")

    @classmethod
    def _uninstall(cls) -> None:
        if cls.active is not None or zombies():
            return  # still needed: a zombie's prints must not reach later cells
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, _Tee):
                setattr(sys, name, stream._original)

    @classmethod
    def silence_zombies(cls) -> None:
        """Keep the routing installed, so that zombies' prints are dropped from now on."""
        cls._install()

    def __enter__(self) -> OutputCapture:
        self._outer = OutputCapture.active
        OutputCapture._install()
        OutputCapture.active = self
        return self

    def __exit__(self, *exc_info) -> None:
        OutputCapture.active = self._outer
        if self._outer is not None:  # nested: the outer capture sees it all too
            self._outer.lines += self.lines
            self._outer.chars += self.chars
        OutputCapture._uninstall()


__all__ = [
    "LINE_WIDTH",
    "RESTART_ADVICE",
    "SHOWN_LINES",
    "STOP_TIMEOUT",
    "LearnerBaseException",
    "LearnerStopped",
    "LearnerThread",
    "Outcome",
    "OutputCapture",
    "describe_line",
    "guarded",
    "learner_calls_running",
    "run_learner",
    "running_for",
    "stop_learner_code",
    "unblock",
    "where",
    "zombies",
]
