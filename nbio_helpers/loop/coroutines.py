"""Step 4 · ``async``/``await``: coroutines on our own loop.

A coroutine is a generator in disguise: ``await future`` runs ``future.__await__()``, which
*yields the future itself* out of the coroutine, up to the :class:`Task` that drives it. The
task asks the future to call it back when it is done, and the loop carries on with others.
Waiting for a socket, a timer or another task is waiting for a :class:`Future`.
"""

from __future__ import annotations

from nbio_helpers.loop.timers import TimerLoop


class CancelledError(BaseException):
    """Raised where a cancelled task is suspended (``asyncio.CancelledError``)."""


class Future:
    """A result that is not there yet; ``await future`` waits for it (``asyncio.Future``)."""

    def __init__(self):
        self.callbacks = []
        self._done = False
        self._result = self._exception = None

    def done(self):
        return self._done

    def result(self):
        if self._exception is not None:
            raise self._exception
        return self._result

    def set_result(self, result):
        self._finish(result, None)

    def set_exception(self, exception):
        self._finish(None, exception)

    def cancel(self):
        self._finish(None, CancelledError())

    def _finish(self, result, exception):
        if self._done:
            return  # the first outcome wins (data, or a timeout)
        self._done, self._result, self._exception = True, result, exception
        for callback in self.callbacks:
            callback(self)

    def add_done_callback(self, callback):
        if self._done:
            callback(self)
        else:
            self.callbacks.append(callback)

    def __await__(self):
        if not self._done:
            yield self  # up to the Task: resume me when I am done
        return self.result()


class Task(Future):
    """Drives a coroutine, one step each time the future it awaits is done (``asyncio.Task``).

    A Task is a Future too: done when the coroutine returns (or raises).
    """

    def __init__(self, loop, coro, name=None):
        super().__init__()
        self.loop, self.coro = loop, coro
        self.name = name or getattr(coro, "__qualname__", "task")
        self.waiting = None  # the future the coroutine awaits now
        self.must_cancel = False
        loop.call_soon(self.step)

    def step(self, error=None):
        if self.done():
            return
        if self.must_cancel:
            error, self.must_cancel = CancelledError(), False
        try:
            future = self.coro.throw(error) if error else self.coro.send(None)
        except StopIteration as stop:
            self.set_result(stop.value)
        except BaseException as exc:  # the coroutine failed, or was cancelled
            self.set_exception(exc)
        else:
            if not isinstance(future, Future):
                wrong = TypeError(f"our loop can only await its own futures, not {future!r}")
                return self.loop.call_soon(self.step, wrong)
            self.waiting = future
            future.add_done_callback(self.wakeup)

    def wakeup(self, future):
        self.loop.call_soon(self.step)

    def cancel(self):
        """Raise CancelledError in the coroutine, where it awaits."""
        if not self.done():
            self.must_cancel = True
            if self.waiting is not None:
                self.waiting.cancel()


class Loop(TimerLoop):
    """The loop of steps 1 to 3, plus what coroutines await: sockets, time, other tasks.

    ``on_task_error(task, exception)``, if set, is told of a task that failed; otherwise
    the exception stops the loop (``run_forever()`` raises it).
    """

    on_task_error = None

    def create_task(self, coro, name=None):
        """Run the coroutine ``coro`` as a :class:`Task`, from the next turn."""
        task = Task(self, coro, name)
        self.tasks.add(task)
        task.add_done_callback(self.task_done)
        return task

    def task_done(self, task):
        self.tasks.discard(task)
        error = task._exception
        if error is not None and not isinstance(error, CancelledError):
            if self.on_task_error is None:
                raise error
            self.on_task_error(task, error)

    def readable(self, sock):
        """A future done when ``sock`` is readable."""
        future = Future()
        self.add_reader(sock, future.set_result, None)
        future.add_done_callback(lambda _: self.remove_reader(sock))
        return future

    def writable(self, sock):
        """A future done when ``sock`` is writable."""
        future = Future()
        self.add_writer(sock, future.set_result, None)
        future.add_done_callback(lambda _: self.remove_writer(sock))
        return future

    def sleep(self, seconds):
        """A future done in ``seconds`` seconds: ``await loop.sleep(1)``. ``sleep(0)`` only
        lets every other ready task run first."""
        future = Future()
        if seconds <= 0:
            self.call_soon(future.set_result, None)
            return future
        timer = self.call_later(seconds, future.set_result, None)
        future.add_done_callback(lambda _: timer.cancel())
        return future

    async def wait_for(self, awaitable, timeout):
        """Await ``awaitable``; if ``timeout`` seconds pass first, cancel it and raise
        TimeoutError."""
        if not isinstance(awaitable, Future):
            awaitable = self.create_task(awaitable)
        timer = self.call_later(timeout, awaitable.cancel)
        try:
            return await awaitable
        except CancelledError:
            if self.time() < timer.when:  # cancelled by someone else: not a timeout
                raise
            raise TimeoutError(f"no result within {timeout:g} s") from None
        finally:
            timer.cancel()

    async def sock_recv(self, sock, n):
        """``sock.recv(n)`` that waits for data without blocking the loop."""
        while True:
            try:
                return sock.recv(n)
            except BlockingIOError:  # nothing yet: wait until readable, try again
                await self.readable(sock)

    async def sock_sendall(self, sock, data):
        """Send every byte of ``data``, waiting while the socket's buffer is full."""
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view) :]
            except BlockingIOError:
                await self.writable(sock)


__all__ = ["CancelledError", "Future", "Loop", "Task"]
