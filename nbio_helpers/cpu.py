"""CPU time used by particular threads, read from another thread.

A server knows which threads are its own; :class:`ThreadCPU` adds up the CPU time they used,
so a notebook can say "the polling loop burnt 0.97 s of CPU in the last second".

How each platform is measured:

* Linux (and other Unixes with ``pthread_getcpuclockid``): the thread's own CPU clock,
  nanosecond resolution.
* Elsewhere (macOS, Windows): ``psutil`` per-thread times, matched by native thread id.
* A thread that has ended reports its final ``time.thread_time()`` itself, so nothing is lost.

``ThreadCPU.supported`` is False where no method works; ``total()`` then returns ``nan``.
"""
from __future__ import annotations

import math
import threading
import time

try:  # optional: the fallback for platforms without per-thread CPU clocks
    import psutil
except ImportError:  # pragma: no cover - psutil is a dependency, but stay importable
    psutil = None

_HAS_PTHREAD_CLOCK = hasattr(time, "pthread_getcpuclockid")


def _live_thread_time(ident: int, native_id: int) -> float | None:
    if _HAS_PTHREAD_CLOCK:
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(ident))
        except (OSError, OverflowError):
            pass  # the thread may have just ended; try the other ways
    if psutil is not None:
        try:
            for t in psutil.Process().threads():
                if t.id == native_id:
                    return t.user_time + t.system_time
        except (psutil.Error, OSError):
            return None
    return None


class ThreadCPU:
    """Adds up the CPU time of the threads that call :meth:`enter` (until they :meth:`exit`).

    Usage (inside the threads being measured)::

        cpu = ThreadCPU()
        def worker():
            cpu.enter()
            try:
                ...
            finally:
                cpu.exit()

    and from any thread: ``cpu.total()`` in seconds.
    """

    supported = _HAS_PTHREAD_CLOCK or psutil is not None

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, int] = {}  # ident -> native id
        self._finished = 0.0

    def enter(self) -> None:
        """Start counting the calling thread."""
        with self._lock:
            self._live[threading.get_ident()] = threading.get_native_id()

    def exit(self) -> None:
        """Stop counting the calling thread, keeping the CPU time it used."""
        used = time.thread_time()
        with self._lock:
            if self._live.pop(threading.get_ident(), None) is not None:
                self._finished += used

    def total(self) -> float:
        """CPU seconds used so far by every thread that entered (live and finished)."""
        with self._lock:
            live = list(self._live.items())
            total = self._finished
        for ident, native_id in live:
            used = _live_thread_time(ident, native_id)
            if used is None:
                return math.nan
            total += used
        return total


def cpu_share(cpu: ThreadCPU, seconds: float, wait=time.sleep) -> float:
    """Measure how much of one core the threads of ``cpu`` use over ``seconds`` of wall time.

    Returns a fraction of one core: 1.0 means one core fully busy.
    """
    c0, t0 = cpu.total(), time.perf_counter()
    wait(seconds)
    c1, t1 = cpu.total(), time.perf_counter()
    return (c1 - c0) / (t1 - t0)
