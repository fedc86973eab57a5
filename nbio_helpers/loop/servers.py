"""Our loops as background servers: the lifecycle of :mod:`nbio_helpers.server`, written once.

A Jupyter kernel's main thread already runs an asyncio loop, so our loops run in a server
thread, as every model does (see :mod:`nbio_helpers.models.asyncio_model`). A
:class:`LoopServer` builds its step's loop (with the recording of :mod:`.record` around it),
lets the subclass start serving on it, runs it until ``stop()`` writes to the socketpair, then
winds down every task and connection in the server thread::

    with CoroutineChatServer(idle_timeout=60) as server:   # 127.0.0.1:<free port>
        ...                                                # connect clients to server.address
    server.events.selects()                                # the loop's select() calls
"""

from __future__ import annotations

import selectors
import types

from nbio_helpers.events import ERROR
from nbio_helpers.framing import MAX_LINE
from nbio_helpers.loop.coroutines import Task
from nbio_helpers.loop.reactor import Reactor
from nbio_helpers.loop.record import LoopLog, RecordingSelector, recording
from nbio_helpers.server import Server


class LoopServer(Server):
    """Base class of the servers that run on one of our loops.

    Subclasses set :attr:`loop_class` and write :meth:`start_serving` (register the listener,
    or spawn an accepting task). ``loop.on_task_error`` records a failed task as an ``ERROR``
    event (with the task's name) and serving goes on.

    Parameters (besides those of :class:`~nbio_helpers.server.Server`)
    ----------
    max_line:
        Longest line accepted, in bytes (line protocols only).
    idle_timeout:
        Seconds without a line after which a client is told so and disconnected (the steps
        that have timers); None = never.
    """

    loop_class = Reactor
    events: LoopLog  # set in __init__: the event log also keeps the loop's records

    def __init__(
        self, *args, max_line: int = MAX_LINE, idle_timeout: float | None = None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be > 0 seconds, not {idle_timeout}")
        if idle_timeout is not None and not hasattr(self.loop_class, "call_later"):
            raise ValueError(
                f"the {self.model} server's loop has no timers: an idle timeout "
                "needs step 3 (timers) or later"
            )
        self.max_line = max_line
        self.idle_timeout = idle_timeout
        self.events = LoopLog(enabled=self.events.enabled)
        self.loop = None

    def make_loop(self):
        """The step's loop; recording every select() and task run when events are kept."""
        if self.events.enabled:
            return recording(self.loop_class)(self.events)
        return self.loop_class(RecordingSelector(selectors.DefaultSelector(), self.events))

    def serve(self) -> None:
        loop = self.loop = self.make_loop()
        loop.on_task_error = self.task_failed
        loop.add_reader(self.waker, self._woken, loop)
        assert self.listener is not None  # serve() runs between start() and stop()
        self.listener.setblocking(False)
        try:
            self.start_serving(loop)
            loop.run_forever()
            if self.in_grace_period:
                self.finish_gracefully(loop)
        finally:
            self.wind_down(loop)

    def start_serving(self, loop) -> None:
        raise NotImplementedError

    def _woken(self, loop) -> None:
        self.drain_waker()
        if self.stopping:
            loop.stop()

    def task_failed(self, task, error: BaseException) -> None:
        self.events.record(ERROR, detail=f"task {task.name}: {type(error).__name__}: {error}")

    def finish_gracefully(self, loop) -> None:
        """A graceful stop (``stop(grace=...)``), after the loop stopped: accept and read no
        more, but send every reply, and close each connection politely (our EOF, then the
        client's: see :meth:`.transport.Transport.close`), until the grace period ends.

        Cancelling a task ends it at its ``await``: a coroutine that has just read some bytes
        writes their reply before it awaits again, so no byte read goes unanswered."""
        for task in list(getattr(loop, "tasks", ())):
            if isinstance(task, Task):
                task.cancel()
        while self.open_connections() and self.in_grace_period:
            loop.run_once()

    def wind_down(self, loop) -> None:
        """In the server thread, after the loop stopped: cancel every coroutine task and let
        it finish (its ``finally`` clauses run here, not at garbage collection in another
        thread), close every generator task, then close the loop. ``stop()`` closes the
        sockets afterwards."""
        tasks = list(getattr(loop, "tasks", ()))
        for task in tasks:
            if isinstance(task, Task):
                task.cancel()
        for _ in range(100):  # bounded: only while callbacks are waiting
            if not loop.ready:
                break
            loop.run_once()
        for task in tasks:
            if isinstance(task, types.GeneratorType):
                try:
                    task.close()
                except RuntimeError:  # it ignored GeneratorExit: nothing more to do
                    pass
        loop.close()


__all__ = ["LoopServer"]
