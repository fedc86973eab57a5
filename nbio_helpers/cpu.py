"""CPU time used by particular threads, read from another thread.

A server knows which threads are its own; :class:`ThreadCPU` adds up the CPU time they used,
so a notebook can say "the polling loop burnt 0.97 s of CPU in the last second".

How each platform is measured (:attr:`ThreadCPU.method`):

* ``"thread clock"`` -- Linux and other Unixes with ``pthread_getcpuclockid``: each thread's
  own CPU clock, read from outside at any moment, nanosecond resolution.
* ``"psutil"`` -- Windows: ``psutil``'s per-thread times, whose ids are the native thread
  ids there; one ``Process.threads()`` call per :meth:`ThreadCPU.total`, for every thread.
* ``"self-reported"`` -- macOS and anywhere else: macOS has no ``pthread_getcpuclockid``,
  and psutil numbers its threads 1..n, which never match ``threading.get_native_id()``. So
  each measured thread reports its own ``time.thread_time()``: :meth:`ThreadCPU.sample`,
  which the server calls where every loop passes anyway (the ``Server.stopping`` check, each
  event it records), after each garbage collection, and :meth:`ThreadCPU.exit`. A thread
  that sits blocked in ``select()`` or ``recv()`` uses no CPU, so its last report is still
  right; a busy one reports on every turn.

Every method gives a number: a thread that cannot be read counts with its last report.
The thread clock method is exact; the others lag by at most one loop turn.
"""

from __future__ import annotations

import functools
import gc
import threading
import time
import weakref
from collections.abc import Callable

try:  # optional: how Windows is measured
    import psutil
except ImportError:  # pragma: no cover - psutil is a dependency, but stay importable
    psutil = None

THREAD_CLOCK = "thread clock"
PSUTIL = "psutil"
SELF_REPORTED = "self-reported"

_self_reporting: weakref.WeakSet[ThreadCPU] = weakref.WeakSet()


def _report_after_gc(phase: str, info: dict) -> None:
    """A garbage collection runs inside whichever thread allocated last, and can take tens
    of milliseconds of CPU in the middle of one loop turn: report it as soon as it ends."""
    for cpu in list(_self_reporting):
        cpu.sample()


@functools.cache
def psutil_knows_native_ids() -> bool:
    """True if psutil's thread ids are the native ids (Linux, Windows; not macOS).

    Found out once per process; ``psutil_knows_native_ids.cache_clear()`` makes the next
    call find out again (a test that replaces ``psutil.Process`` does)."""
    try:
        ids = {t.id for t in psutil.Process().threads()}
    except (psutil.Error, OSError):
        ids = set()
    return threading.get_native_id() in ids


def measuring_method() -> str:
    """How this platform measures a thread's CPU: one of ``"thread clock"``, ``"psutil"``,
    ``"self-reported"`` (see the module's docstring)."""
    if hasattr(time, "pthread_getcpuclockid"):
        return THREAD_CLOCK
    if psutil is not None and psutil_knows_native_ids():
        return PSUTIL
    return SELF_REPORTED


class _Thread:
    """One measured thread: its ids and the CPU time it last reported."""

    __slots__ = ("ident", "native_id", "reported")

    def __init__(self) -> None:
        self.ident = threading.get_ident()
        self.native_id = threading.get_native_id()
        self.reported = time.thread_time()


class ThreadCPU:
    """Adds up the CPU time of the threads that call :meth:`enter` (until they :meth:`exit`).

    Usage (inside the threads being measured)::

        cpu = ThreadCPU()
        def worker():
            cpu.enter()
            try:
                while ...:
                    cpu.sample()      # once per loop turn: needed where method is "self-reported"
                    ...
            finally:
                cpu.exit()

    and from any thread: ``cpu.total()`` in seconds.

    Attributes
    ----------
    method:
        How the threads are read: ``"thread clock"``, ``"psutil"`` or ``"self-reported"``.
    needs_samples:
        True when :meth:`sample` matters (``"self-reported"``); otherwise it does nothing.
    """

    supported = True
    """Kept for callers that checked it: every platform is measured now."""

    def __init__(self) -> None:
        self.method = measuring_method()
        self.needs_samples = self.method == SELF_REPORTED
        self._lock = threading.Lock()
        self._live: dict[int, _Thread] = {}  # ident -> thread
        self._finished = 0.0
        if self.needs_samples:
            _self_reporting.add(self)
            if _report_after_gc not in gc.callbacks:
                gc.callbacks.append(_report_after_gc)

    def enter(self) -> None:
        """Start counting the calling thread."""
        thread = _Thread()
        with self._lock:
            self._live[thread.ident] = thread

    def sample(self) -> None:
        """Report the calling thread's CPU time so far (cheap; a no-op unless it is needed,
        or if the calling thread did not :meth:`enter`)."""
        if self.needs_samples:
            thread = self._live.get(threading.get_ident())
            if thread is not None:
                thread.reported = time.thread_time()

    def exit(self) -> None:
        """Stop counting the calling thread, keeping the CPU time it used."""
        used = time.thread_time()
        with self._lock:
            if self._live.pop(threading.get_ident(), None) is not None:
                self._finished += used

    @property
    def live_threads(self) -> int:
        """How many threads are counted now (entered, not yet exited)."""
        with self._lock:
            return len(self._live)

    def total(self, clock: Callable[[int], float] | None = None) -> float:
        """CPU seconds used so far by every thread that entered (live and finished).

        Parameters
        ----------
        clock:
            If given, how to read a live thread's CPU seconds, from its
            ``threading.get_ident()``, instead of :attr:`method` (finished threads count
            with what they used at :meth:`exit`): to compare a method with another, as the
            tests compare each with the Linux thread clock.
        """
        # Under the lock: a thread cannot finish exit() meanwhile, so it is still alive while
        # its clock is read (reading the clock of an ended thread is undefined).
        with self._lock:
            live = list(self._live.values())
            total = self._finished
            if clock is not None:
                for thread in live:
                    total += clock(thread.ident)
            elif self.method == THREAD_CLOCK:
                for thread in live:
                    total += _thread_clock(thread)
            elif self.method == PSUTIL:
                times = _psutil_thread_times()
                for thread in live:
                    total += times.get(thread.native_id, thread.reported)
            else:
                for thread in live:
                    total += thread.reported
        return total


def _thread_clock(thread: _Thread) -> float:
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except (OSError, OverflowError):
        return thread.reported


def _psutil_thread_times() -> dict[int, float]:
    try:
        return {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}
    except (psutil.Error, OSError):
        return {}


def cpu_share(cpu: ThreadCPU, seconds: float, wait=time.sleep) -> float:
    """Measure how much of one core the threads of ``cpu`` use over ``seconds`` of wall time.

    Returns a fraction of one core: 1.0 means one core fully busy.
    """
    c0, t0 = cpu.total(), time.perf_counter()
    wait(seconds)
    c1, t1 = cpu.total(), time.perf_counter()
    return (c1 - c0) / (t1 - t0)


__all__ = [
    "PSUTIL",
    "SELF_REPORTED",
    "THREAD_CLOCK",
    "ThreadCPU",
    "cpu_share",
    "measuring_method",
    "psutil_knows_native_ids",
]
