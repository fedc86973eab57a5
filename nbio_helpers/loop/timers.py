"""Step 3 · time: ``call_later()`` on a heap of deadlines.

``select()``'s timeout is the time until the earliest deadline: the loop sleeps in the kernel
until a socket is ready or a timer is due, never longer, never spinning. Tasks can now
``yield "sleep", seconds``, and ``yield "read", sock, timeout`` raises ``TimeoutError`` in the
task if no data comes within ``timeout`` seconds (``socket.settimeout()``, for tasks).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import time

from nbio_helpers.loop.generators import GeneratorLoop

_order = itertools.count()


@dataclasses.dataclass(order=True)
class Timer:
    """A callback due at ``when`` (``time.monotonic()``); ``cancel()`` it to skip it."""

    when: float
    order: int  # equal deadlines run in the order they were set
    callback: object = dataclasses.field(compare=False)
    args: tuple = dataclasses.field(compare=False)
    cancelled: bool = dataclasses.field(default=False, compare=False)

    def cancel(self):
        self.cancelled = True


class TimerLoop(GeneratorLoop):
    """A :class:`GeneratorLoop` with timers: ``call_later(delay, callback, *args)``."""

    def __init__(self, selector=None):
        super().__init__(selector)
        self.timers = []  # a heap: timers[0] is the earliest deadline

    def time(self):
        return time.monotonic()

    def call_later(self, delay, callback, *args):
        """Call ``callback(*args)`` in ``delay`` seconds. Returns the :class:`Timer`."""
        timer = Timer(self.time() + delay, next(_order), callback, args)
        heapq.heappush(self.timers, timer)
        return timer

    def timeout(self):
        """0 if callbacks wait, else the time until the earliest timer; None if no timer."""
        while self.timers and self.timers[0].cancelled:
            heapq.heappop(self.timers)
        if self.ready or not self.timers:
            return super().timeout()
        return max(0.0, self.timers[0].when - self.time())

    def run_once(self):
        super().run_once()
        self.run_timers()

    def run_timers(self):
        """Call every timer that is due, earliest first."""
        now, due = self.time(), []
        while self.timers and self.timers[0].when <= now:
            due.append(heapq.heappop(self.timers))
        for timer in due:  # not those they set: they wait for next turn
            if not timer.cancelled:
                timer.callback(*timer.args)

    def wait_sleep(self, task, seconds):
        self.call_later(seconds, self.step, task)

    def wait_read(self, task, sock, timeout=None):
        if timeout is None:
            return super().wait_read(task, sock)

        def ready():
            timer.cancel()
            self.remove_reader(sock)
            self.step(task)

        def expired():
            self.remove_reader(sock)
            self.step(task, TimeoutError(f"no data for {timeout:g} s"))

        timer = self.call_later(timeout, expired)
        self.add_reader(sock, ready)


__all__ = ["Timer", "TimerLoop"]
